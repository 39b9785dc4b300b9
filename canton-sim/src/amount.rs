//! Daml `Decimal` amounts (Numeric 10): parsed from and printed as strings with
//! exactly 10 fractional digits, kept as integers of 10^-10 units.

/// Units per whole token (10 fractional digits).
pub const SCALE: i128 = 10_000_000_000;

/// Parses `"100"`, `"100.5"`, `"0.0000000001"`; refuses more than 10
/// fractional digits, signs, and non-positive amounts.
pub fn parse_amount(s: &str) -> Result<i128, String> {
    let t = s.trim();
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "amount \"{s}\" is not a decimal number such as 100 or 12.5"
        ));
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 10 {
        return Err(format!(
            "amount \"{s}\" has more than 10 fractional digits or is malformed"
        ));
    }
    if int.len() > 28 {
        return Err(format!("amount \"{s}\" is too large for a Daml Decimal"));
    }
    let whole: i128 = int
        .parse()
        .map_err(|_| format!("amount \"{s}\" is invalid"))?;
    let mut f = frac.to_string();
    while f.len() < 10 {
        f.push('0');
    }
    let fraction: i128 = f.parse().unwrap_or(0);
    let v = whole * SCALE + fraction;
    if v <= 0 {
        return Err(format!("amount \"{s}\" must be positive"));
    }
    Ok(v)
}

/// Formats units as a Daml Decimal with 10 fractional digits (`"200.0000000000"`).
pub fn format_amount(units: i128) -> String {
    let sign = if units < 0 { "-" } else { "" };
    let u = units.abs();
    format!("{sign}{}.{:010}", u / SCALE, u % SCALE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format() {
        assert_eq!(
            format_amount(parse_amount("200").unwrap()),
            "200.0000000000"
        );
        assert_eq!(format_amount(parse_amount("0.5").unwrap()), "0.5000000000");
        assert_eq!(parse_amount("0.0000000001").unwrap(), 1);
        assert!(parse_amount("0.00000000001").is_err());
        assert!(parse_amount("-1").is_err());
        assert!(parse_amount("0").is_err());
        assert!(parse_amount("1e3").is_err());
        assert!(parse_amount("").is_err());
    }
}
