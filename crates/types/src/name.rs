/// Queue, topic, subscription and schedule names are 1–128 characters of `A-Z a-z 0-9 _ - . :`.
pub const NAME_MAX_LEN: usize = 128;

/// Checks a name against the naming rule; the error says what is wrong, for a problem detail.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > NAME_MAX_LEN {
        return Err(format!("must be at most {NAME_MAX_LEN} characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')))
    {
        return Err(format!(
            "contains {c:?}; only A-Z a-z 0-9 _ - . : are allowed"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("emails.high:v1_x-y").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_name("é").is_err());
        assert!(validate_name(&"a".repeat(128)).is_ok());
        assert!(validate_name(&"a".repeat(129)).is_err());
    }
}
