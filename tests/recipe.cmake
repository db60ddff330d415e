# tests for runner/recipe
