# tests for runner/data
