pub mod placeholder_parse {}
