//! Host bindings for `inlet:plugin@0.1.0` (wit/0.1.0). A later contract version
//! gets a sibling module, and the runtime adapts its types to the current ones.

wasmtime::component::bindgen!({
    path: "../wit/0.1.0",
    world: "plugin",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use self::inlet::plugin::types::*;
