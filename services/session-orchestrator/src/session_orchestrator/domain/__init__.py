"""Pure decisions about sessions, sends and reconciliation: no I/O, no clocks, no broker."""
