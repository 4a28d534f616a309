"""Rendering a take: settings resolved in one place, one render path, one sidecar."""
