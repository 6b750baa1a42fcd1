//! The logic of {{name}}, free of I/O and of the host API, so that `make test` checks it
//! natively (`rustc --test`) and tern runs the same code in the function.

/// Names longer than this are cut.
const MAX_NAME: usize = 64;

/// The answer to one call. `input` is the request body or the MQTT payload (possibly
/// empty), `trigger` how the call came ("http", "mqtt", "cron"), `origin` the MQTT topic or
/// the scheduled time (empty for none) and `count` the call's number.
pub fn greeting(input: &[u8], trigger: &str, origin: &str, count: u64) -> String {
    let text = String::from_utf8_lossy(input);
    let trimmed = text.trim();
    let who: String = if trimmed.is_empty() {
        "world".to_string()
    } else {
        trimmed.chars().take(MAX_NAME).collect()
    };
    let mut answer = format!("Hello, {}! This is call {} of {{name}}, by {}", who, count, trigger);
    if !origin.is_empty() {
        answer.push_str(if trigger == "mqtt" { " on " } else { " at " });
        answer.push_str(origin);
    }
    answer.push('.');
    answer
}

#[cfg(test)]
mod tests {
    use super::greeting;

    #[test]
    fn answers_each_trigger() {
        let cases: [(&[u8], &str, &str, u64, &str); 4] = [
            (b"", "http", "", 1, "Hello, world! This is call 1 of {{name}}, by http."),
            (b"  Ada\n", "http", "", 2, "Hello, Ada! This is call 2 of {{name}}, by http."),
            (b"Grace", "mqtt", "{{name}}/in", 3, "Hello, Grace! This is call 3 of {{name}}, by mqtt on {{name}}/in."),
            (b"", "cron", "2026-01-01T00:00:00Z", 4, "Hello, world! This is call 4 of {{name}}, by cron at 2026-01-01T00:00:00Z."),
        ];
        for (input, trigger, origin, count, want) in cases {
            assert_eq!(greeting(input, trigger, origin, count), want);
        }
    }

    #[test]
    fn cuts_long_names() {
        let long = vec![b'x'; 200];
        let want = format!("Hello, {}! This is call 5 of {{name}}, by http.", "x".repeat(64));
        assert_eq!(greeting(&long, "http", "", 5), want);
    }
}
