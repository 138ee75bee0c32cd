"""Engine adapters, one module per engine, each with a `DIALECT` constant and one class
implementing `flowc.runtime.engine.Engine`."""
