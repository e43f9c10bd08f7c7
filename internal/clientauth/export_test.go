package clientauth

// CacheKey is cacheKey, for the key tests.
var CacheKey = cacheKey
