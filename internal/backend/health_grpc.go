package backend

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// grpcHealthPath is the method of the standard health protocol (grpc.health.v1).
const grpcHealthPath = "/grpc.health.v1.Health/Check"

// probeGRPC asks a target's grpc.health.v1 service about spec.Service over HTTP/2: in
// clear (h2c, prior knowledge), or over TLS with the group's settings when it has them.
// Only SERVING passes. The two protobuf messages have one field each, so they are
// encoded here rather than through a gRPC library.
func probeGRPC(spec ProbeSpec) func(ctx context.Context, addr string) error {
	protos := &http.Protocols{}
	scheme := "http"
	tr := &http.Transport{DisableKeepAlives: true, DisableCompression: true, Protocols: protos}
	if spec.TLS != nil {
		scheme = "https"
		protos.SetHTTP2(true)
		tr.TLSClientConfig = spec.TLS.Clone() // no ServerName: the transport takes the target's host
		tr.TLSClientConfig.NextProtos = []string{"h2"}
	} else {
		protos.SetUnencryptedHTTP2(true)
	}
	client := &http.Client{Transport: tr}
	body := grpcFrame(protoString(1, spec.Service))
	return func(ctx context.Context, addr string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, scheme+"://"+addr+grpcHealthPath, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/grpc")
		req.Header.Set("Te", "trailers")
		req.Header.Set("User-Agent", "tlsgate-health-check")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		msg, err := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		if err != nil {
			return err
		}
		return grpcHealth(resp, msg)
	}
}

// grpcHealth judges a Check answer: gRPC status 0 and a status field of SERVING (1).
func grpcHealth(resp *http.Response, frame []byte) error {
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	st := resp.Trailer.Get("Grpc-Status")
	if st == "" {
		st = resp.Header.Get("Grpc-Status") // trailers-only
	}
	if st != "0" {
		return fmt.Errorf("grpc-status %s: %s", st, resp.Trailer.Get("Grpc-Message")+resp.Header.Get("Grpc-Message"))
	}
	if len(frame) < 5 || frame[0] != 0 || int(binary.BigEndian.Uint32(frame[1:5])) != len(frame)-5 {
		return errors.New("malformed health check answer")
	}
	if s := protoVarint(frame[5:], 1); s != 1 {
		return fmt.Errorf("health status %s", servingStatus(s))
	}
	return nil
}

// servingStatus names grpc.health.v1's HealthCheckResponse.ServingStatus values.
func servingStatus(s uint64) string {
	switch s {
	case 0:
		return "UNKNOWN"
	case 2:
		return "NOT_SERVING"
	case 3:
		return "SERVICE_UNKNOWN"
	}
	return fmt.Sprint(s)
}

// grpcFrame is a gRPC length-prefixed message, uncompressed.
func grpcFrame(msg []byte) []byte {
	return append(binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg))), msg...)
}

// protoString encodes field as a protobuf string (nothing for "", proto3's default).
func protoString(field int, s string) []byte {
	if s == "" {
		return nil
	}
	b := binary.AppendUvarint([]byte{byte(field<<3 | 2)}, uint64(len(s)))
	return append(b, s...)
}

// protoVarint returns the varint field of a message (0 when absent), skipping the
// other fields.
func protoVarint(msg []byte, field int) uint64 {
	var v uint64
	for len(msg) > 0 {
		tag, n := binary.Uvarint(msg)
		if n <= 0 {
			return 0
		}
		msg = msg[n:]
		switch tag & 7 {
		case 0: // varint
			x, n := binary.Uvarint(msg)
			if n <= 0 {
				return 0
			}
			if int(tag>>3) == field {
				v = x
			}
			msg = msg[n:]
		case 2: // length-delimited
			l, n := binary.Uvarint(msg)
			if n <= 0 || l > uint64(len(msg)-n) {
				return 0
			}
			msg = msg[n+int(l):]
		case 1: // 64-bit
			msg = msg[min(8, len(msg)):]
		case 5: // 32-bit
			msg = msg[min(4, len(msg)):]
		default:
			return 0
		}
	}
	return v
}
