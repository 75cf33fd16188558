//! Deterministic network simulator for quorate.
