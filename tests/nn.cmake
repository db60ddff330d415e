# tests for runner/nn
