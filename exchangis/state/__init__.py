"""Live state in Redis: keys, the state machine, atomic transitions and line-addressed logs."""
