//! hello_rust: reads the whole request and greets with its size, echoing the
//! request method and path when the platform provides them.
use std::env;
use std::io::{self, Read, Write};

fn main() -> io::Result<()> {
    let mut body = Vec::new();
    io::stdin().read_to_end(&mut body)?;

    let stdout = io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "Hello from Rust on tern: got {} bytes", body.len())?;
    if let Ok(method) = env::var("REQUEST_METHOD") {
        writeln!(out, "method: {}", method)?;
    }
    if let Ok(path) = env::var("PATH_INFO") {
        writeln!(out, "path: {}", path)?;
    }
    out.flush()
}
