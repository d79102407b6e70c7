package openai

// BaseFrom is baseFrom, for the tests of the default base transport.
var BaseFrom = baseFrom
