package fleet

import (
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.uber.org/zap"
)

type mvccpbKV = mvccpb.KeyValue

// nopLogger silences the etcd client's own zap logging: the node logs state changes
// once each, through slog; the client would log every failed retry.
func nopLogger() *zap.Logger { return zap.NewNop() }
