// Counts its invocations in durable key-value state with the Rust guest SDK: increments
// the counter named by the request (default "count"), records the request under
// "seen/<n>", logs the new value, and answers it.
#[path = "../../sdk/guest/rust/tern.rs"]
mod tern;

use std::io::Read;

fn run() -> tern::Result<String> {
    let mut request = String::new();
    let _ = std::io::stdin().read_to_string(&mut request);
    let name = request.trim();
    let key = if name.is_empty() { "count" } else { name };
    let current = match tern::kv_get(key.as_bytes())? {
        Some(v) => String::from_utf8_lossy(&v).parse::<u64>().unwrap_or(0),
        None => 0,
    };
    let next = current + 1;
    tern::kv_set(key.as_bytes(), next.to_string().as_bytes())?;
    tern::kv_set(format!("seen/{:04}", next).as_bytes(), key.as_bytes())?;
    tern::log(tern::Level::Info, &format!("{} is now {}", key, next))?;
    let seen = tern::kv_list(b"seen/")?;
    Ok(format!("{}={} seen={}\n", key, next, seen.len()))
}

fn main() {
    match run() {
        Ok(text) => print!("{}", text),
        Err(e) => {
            let _ = tern::log(tern::Level::Error, &e.to_string());
            println!("error {}", e);
        }
    }
}
