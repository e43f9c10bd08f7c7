package listener

// Workers are goroutines kept parked after their task, with the stack the task grew: a
// TLS handshake (16 KiB and more) or an HTTP request (about 8 KiB). A goroutine that
// lives as long as a connection waits on a fresh, small stack and hands the deep work to
// a worker, so that stack is paid per task in flight rather than per open connection,
// and new connections skip growing one.

const maxIdleWorkers = 64 // parked after a burst; the rest exit

// dispatch runs f on a worker.
func (l *Listener) dispatch(f func()) {
	select {
	case l.tasks <- f:
	default:
		l.wg.Go(func() { l.worker(f) })
	}
}

func (l *Listener) worker(task func()) {
	for {
		task()
		if l.idleWorkers.Add(1) > maxIdleWorkers {
			l.idleWorkers.Add(-1)
			return
		}
		select {
		case task = <-l.tasks:
			l.idleWorkers.Add(-1)
		case <-l.stopWorkers:
			l.idleWorkers.Add(-1)
			return
		}
	}
}
