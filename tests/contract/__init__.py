"""The connector contract suite: every registered connector, the same promises."""
