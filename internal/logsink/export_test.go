package logsink

var (
	AppendAttr = appendAttr
	AppendTime = appendTime
)
