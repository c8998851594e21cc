"""Long-running processes: `sagewalk sampler` (producers' supervisor) and
`sagewalk trainer`; `sagewalk up` runs both as supervised children."""
