package main

func failoverMain(args []string) error { return nil }
