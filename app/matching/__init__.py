"""Where rules match events: rule files compiled into durable-rules."""
