package logsink

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"
)

// NewJSONHandler returns a slog handler writing what slog.NewJSONHandler(w, nil) writes,
// faster for the flat records the proxy logs per request and connection: strings,
// numbers, booleans, durations and times are encoded here, without slog's generic attr
// walk and without json.Marshal for floats (together about a tenth of a core at 30,000
// requests a second). A record holding anything else (groups, Any, LogValuer), and
// every handler made by WithAttrs or WithGroup, goes through slog's own JSON handler.
func NewJSONHandler(w io.Writer) slog.Handler {
	return NewJSONHandlerLevel(w, slog.LevelInfo)
}

// NewJSONHandlerLevel is NewJSONHandler writing records at level and above.
func NewJSONHandlerLevel(w io.Writer, level slog.Leveler) slog.Handler {
	lw := w
	if _, whole := w.(*Writer); !whole {
		lw = &lockedWriter{w: w}
	}
	return &jsonHandler{w: lw, level: level, std: slog.NewJSONHandler(lw, &slog.HandlerOptions{Level: level})}
}

type jsonHandler struct {
	w     io.Writer // takes whole lines from both handlers, one at a time
	level slog.Leveler
	std   slog.Handler
}

// lockedWriter serializes the two handlers' writes of whole lines; a *Writer does so
// itself.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

var lines = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func (h *jsonHandler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= h.level.Level()
}

func (h *jsonHandler) WithAttrs(as []slog.Attr) slog.Handler { return h.std.WithAttrs(as) }
func (h *jsonHandler) WithGroup(name string) slog.Handler    { return h.std.WithGroup(name) }

func (h *jsonHandler) Handle(ctx context.Context, r slog.Record) error {
	flat := r.Time.IsZero() || validYear(r.Time)
	r.Attrs(func(a slog.Attr) bool {
		flat = flat && a.Key != "" && simple(a.Value)
		return flat
	})
	if !flat {
		return h.std.Handle(ctx, r)
	}
	bp := lines.Get().(*[]byte)
	b := h.begin((*bp)[:0], r.Time, r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b = appendAttr(b, a)
		return true
	})
	return h.end(bp, b)
}

// JSONLineHandler takes a record whose attributes the caller encodes, into the line's
// own buffer: a line written per request is spared slog's attributes and their walk,
// and a second buffer its fields would be copied from.
type JSONLineHandler interface {
	slog.Handler
	// AppendHead appends to b the opening of a record of t, level and msg, which the
	// caller follows with its attributes, each as `,"key":value`, the key and value as
	// slog's JSON handler writes them (AppendString, AppendMillis, strconv's AppendInt
	// and AppendBool), and then hands to WriteLine.
	AppendHead(b []byte, t time.Time, level slog.Level, msg string) []byte
	// WriteLine closes the record in b and writes it; it returns b with the closing
	// appended (the caller's to reuse: the line was copied or written).
	WriteLine(b []byte) ([]byte, error)
}

// AppendHead appends a record's time, level and message.
func (h *jsonHandler) AppendHead(b []byte, t time.Time, level slog.Level, msg string) []byte {
	if t.IsZero() || inLastSecond(t) || validYear(t) { // the first is cheaper than Year
		return h.begin(b, t, level, msg)
	}
	return badYear(b, t, level, msg)
}

// WriteLine closes the record begun by AppendHead in b and writes it.
func (h *jsonHandler) WriteLine(b []byte) ([]byte, error) {
	b = append(b, '}', '\n')
	_, err := h.w.Write(b)
	return b, err
}

func validYear(t time.Time) bool {
	y := t.Year()
	return y >= 0 && y < 10000
}

// badYear appends the start of what slog's handler writes for a record whose time it
// cannot format (its attributes come last there too).
func badYear(b []byte, t time.Time, level slog.Level, msg string) []byte {
	var w bytes.Buffer
	_ = slog.NewJSONHandler(&w, nil).Handle(context.Background(), slog.NewRecord(t, level, msg, 0))
	return append(b, bytes.TrimSuffix(w.Bytes(), []byte("}\n"))...)
}

// begin appends a line's time, level and message.
func (h *jsonHandler) begin(b []byte, t time.Time, level slog.Level, msg string) []byte {
	b = append(b, '{')
	if !t.IsZero() {
		b = append(b, `"time":"`...)
		b = appendTime(b, t)
		b = append(b, `",`...)
	}
	switch level { // the levels lines are written at, as constants
	case slog.LevelInfo:
		b = append(b, `"level":"INFO","msg":`...)
	case slog.LevelWarn:
		b = append(b, `"level":"WARN","msg":`...)
	default:
		b = append(b, `"level":`...)
		b = AppendString(b, level.String())
		b = append(b, `,"msg":`...)
	}
	return AppendString(b, msg)
}

// end closes the line in b, writes it and returns b's buffer, bp, to the pool.
func (h *jsonHandler) end(bp *[]byte, b []byte) error {
	b, err := h.WriteLine(b)
	if cap(b) <= 64<<10 {
		*bp = b
		lines.Put(bp)
	}
	return err
}

func appendAttr(b []byte, a slog.Attr) []byte {
	b = append(b, ',')
	b = AppendString(b, a.Key)
	b = append(b, ':')
	return appendValue(b, a.Value)
}

// simple reports whether v is encoded here: not a group, Any or LogValuer, and no float
// or time that slog reports as an error.
func simple(v slog.Value) bool {
	switch v.Kind() {
	case slog.KindString, slog.KindInt64, slog.KindUint64, slog.KindBool, slog.KindDuration:
		return true
	case slog.KindFloat64:
		f := v.Float64()
		return !math.IsNaN(f) && !math.IsInf(f, 0)
	case slog.KindTime:
		return validYear(v.Time())
	}
	return false
}

func appendValue(b []byte, v slog.Value) []byte {
	switch v.Kind() {
	case slog.KindString:
		return AppendString(b, v.String())
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10)
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10)
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool())
	case slog.KindDuration:
		return strconv.AppendInt(b, int64(v.Duration()), 10)
	case slog.KindTime:
		b = append(b, '"')
		b = appendTime(b, v.Time())
		return append(b, '"')
	default: // KindFloat64
		return appendFloat(b, v.Float64())
	}
}
