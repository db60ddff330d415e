# tests for runner/plugins
