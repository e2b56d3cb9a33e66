this is not WebAssembly
