//! Naming rules for every metric and span, and the vLLM families checked against vLLM's own
//! output.
