//go:build !linux

package storage_test

func spreadSubdirs(string) {}
