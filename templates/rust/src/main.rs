//! {{name}}: a tern function. It reads its input as its trigger delivers it (the request
//! body or the MQTT payload on stdin; TERN_TRIGGER, MQTT_TOPIC and TERN_SCHEDULED_AT in
//! the environment), counts its calls in the node's key-value store, logs a line and
//! answers on stdout.

mod greeting;
mod tern;

use std::env;
use std::io::Read;

/// Adds one to the counter under "calls" and returns its new value.
fn count_call() -> tern::Result<u64> {
    let count = match tern::kv_get(b"calls")? {
        Some(value) => String::from_utf8_lossy(&value).parse::<u64>().unwrap_or(0),
        None => 0,
    };
    tern::kv_set(b"calls", (count + 1).to_string().as_bytes())?;
    Ok(count + 1)
}

fn main() {
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().take(4096).read_to_end(&mut input) {
        eprintln!("cannot read the input: {}", e);
        std::process::exit(1);
    }
    let trigger = env::var("TERN_TRIGGER").unwrap_or_else(|_| "http".to_string());
    let origin = env::var("MQTT_TOPIC")
        .or_else(|_| env::var("TERN_SCHEDULED_AT"))
        .unwrap_or_default();

    let count = match count_call() {
        Ok(count) => count,
        Err(e) => {
            let _ = tern::log(tern::Level::Error, &e.to_string());
            std::process::exit(1);
        }
    };
    let answer = greeting::greeting(&input, &trigger, &origin, count);
    let _ = tern::log(tern::Level::Info, &answer);
    if trigger == "http" {
        print!("Content-Type: text/plain\r\n\r\n");
    }
    println!("{}", answer);
}
