# tests for runner/core
