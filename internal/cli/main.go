// Package cli implements the sregistry commands.
package cli

// Main runs sregistry with os.Args and returns the exit code.
func Main() int { panic("unimplemented") }
