//! OpenFlow 1.3 codec (pure: no I/O).
