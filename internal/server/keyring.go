package server

import "crypto/rand"

// keyring keeps session-ticket keys across reloads, one per policy identity (listener,
// domain, and everything that decides who is let in): a reload that changes nothing
// about that identity keeps its key, so clients keep resuming. Keys not used by the
// latest applied configuration are dropped. It is used under Server.mu.
type keyring struct {
	keys map[string][32]byte
	used map[string]bool
}

// key returns the key of identity, making one when it has none. A nil keyring (check)
// draws fresh keys.
func (k *keyring) key(identity string) ([32]byte, error) {
	var key [32]byte
	if k == nil {
		_, err := rand.Read(key[:])
		return key, err
	}
	if k.used == nil {
		k.used = map[string]bool{}
	}
	k.used[identity] = true
	if key, ok := k.keys[identity]; ok {
		return key, nil
	}
	if _, err := rand.Read(key[:]); err != nil {
		return key, err
	}
	k.keys[identity] = key
	return key, nil
}

// prune drops the keys the configuration just applied did not ask for.
func (k *keyring) prune() {
	for id := range k.keys {
		if !k.used[id] {
			delete(k.keys, id)
		}
	}
	k.used = nil
}
