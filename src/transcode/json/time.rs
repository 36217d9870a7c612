//! Timestamp and Duration in their proto3 JSON string forms: RFC 3339 (`2024-05-01T10:00:00Z`)
//! and seconds with a suffix (`1.5s`), parsed and printed with their documented ranges.

/// Seconds from 0001-01-01T00:00:00Z to the Unix epoch (Timestamp's lower bound).
pub(super) const MIN_TIMESTAMP_SECONDS: i64 = -62_135_596_800;
/// Seconds from the Unix epoch to 9999-12-31T23:59:59Z (Timestamp's upper bound).
pub(super) const MAX_TIMESTAMP_SECONDS: i64 = 253_402_300_799;
/// Duration's documented range: about 10,000 years.
pub(super) const MAX_DURATION_SECONDS: i64 = 315_576_000_000;

/// Writes a normalized Timestamp (nanos in `0..1e9`, year 1 to 9999) as RFC 3339 with 0, 3, 6
/// or 9 fractional digits, the form prost-types' `Display` (and so the old printer) uses.
/// Returns false, writing nothing, for anything else.
pub(crate) fn write_timestamp(seconds: i64, nanos: i32, out: &mut Vec<u8>) -> bool {
    if !(0..1_000_000_000).contains(&nanos)
        || !(MIN_TIMESTAMP_SECONDS..=MAX_TIMESTAMP_SECONDS).contains(&seconds)
    {
        return false;
    }
    let (days, secs) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    digits(out, year, 4);
    out.push(b'-');
    digits(out, month, 2);
    out.push(b'-');
    digits(out, day, 2);
    out.push(b'T');
    digits(out, secs / 3600, 2);
    out.push(b':');
    digits(out, secs / 60 % 60, 2);
    out.push(b':');
    digits(out, secs % 60, 2);
    let nanos = i64::from(nanos);
    if nanos != 0 {
        out.push(b'.');
        if nanos % 1_000_000 == 0 {
            digits(out, nanos / 1_000_000, 3);
        } else if nanos % 1_000 == 0 {
            digits(out, nanos / 1_000, 6);
        } else {
            digits(out, nanos, 9);
        }
    }
    out.push(b'Z');
    true
}

/// Writes `value` (non-negative) as exactly `width` decimal digits.
fn digits(out: &mut Vec<u8>, value: i64, width: u32) {
    for i in (0..width).rev() {
        out.push(b'0' + (value / 10i64.pow(i) % 10) as u8);
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (inverse of
/// [`days_from_civil`]: eras of 400 years, March-based years).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Parses RFC 3339 `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)` into Unix seconds and nanos.
pub(crate) fn parse_timestamp(text: &str) -> Result<(i64, i32), String> {
    let bad = || format!("`{text}` is not an RFC 3339 timestamp");
    let local = parse_date_time(text.as_bytes()).ok_or_else(bad)?;
    // `parse_date_time` saw 19 ASCII bytes, so byte 19 is a char boundary.
    let (nanos, rest) = parse_fraction(&text[19..]).ok_or_else(bad)?;
    let offset = parse_offset(rest).ok_or_else(bad)?;
    let seconds = local - offset * 60;
    if !(MIN_TIMESTAMP_SECONDS..=MAX_TIMESTAMP_SECONDS).contains(&seconds) {
        return Err(format!("`{text}` is outside 0001-01-01 to 9999-12-31"));
    }
    Ok((seconds, nanos))
}

/// The `YYYY-MM-DDTHH:MM:SS` that starts a timestamp (of at least 20 bytes), as seconds since
/// the epoch read as UTC; `None` unless it is a real date and time of day.
fn parse_date_time(b: &[u8]) -> Option<i64> {
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let digits = |from: usize, to: usize| -> Option<i64> {
        let part = &b[from..to];
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |acc, d| acc * 10 + i64::from(d - b'0')))
    };
    let (year, month, day) = (digits(0, 4)?, digits(5, 7)?, digits(8, 10)?);
    let (hour, minute, second) = (digits(11, 13)?, digits(14, 16)?, digits(17, 19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// The zone suffix `Z` or `±HH:MM` as minutes east of UTC; `None` for anything else.
fn parse_offset(rest: &str) -> Option<i64> {
    match rest.as_bytes() {
        [b'Z'] => Some(0),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            if ![h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit()) {
                return None;
            }
            let (hours, minutes) = (
                i64::from((h1 - b'0') * 10 + (h2 - b'0')),
                i64::from((m1 - b'0') * 10 + (m2 - b'0')),
            );
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 60 + minutes;
            Some(if *sign == b'+' { offset } else { -offset })
        }
        _ => None,
    }
}

/// Parses an optional `.digits` (1 to 9) into nanoseconds and returns the rest of the text.
fn parse_fraction(text: &str) -> Option<(i32, &str)> {
    let Some(after_dot) = text.strip_prefix('.') else {
        return Some((0, text));
    };
    let len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
    if len == 0 || len > 9 {
        return None;
    }
    let mut nanos: i32 = 0;
    for d in after_dot[..len].bytes() {
        nanos = nanos * 10 + i32::from(d - b'0');
    }
    for _ in len..9 {
        nanos *= 10;
    }
    Some((nanos, &after_dot[len..]))
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (eras of 400 years, March-based years).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Parses `"1.5s"`, `"-0.000000001s"`: seconds with up to 9 fractional digits and an `s`.
pub(crate) fn parse_duration(text: &str) -> Result<(i64, i32), String> {
    let bad = || format!("`{text}` is not a duration such as \"1.5s\"");
    let body = text.strip_suffix('s').ok_or_else(bad)?;
    let (negative, unsigned) = match body.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, body),
    };
    let int_len = unsigned.bytes().take_while(u8::is_ascii_digit).count();
    if int_len == 0 {
        return Err(bad());
    }
    let seconds: i64 = unsigned[..int_len].parse().map_err(|_| bad())?;
    let (nanos, rest) = parse_fraction(&unsigned[int_len..]).ok_or_else(bad)?;
    if !rest.is_empty() {
        return Err(bad());
    }
    if seconds > MAX_DURATION_SECONDS {
        return Err(format!("`{text}` exceeds ±{MAX_DURATION_SECONDS}s"));
    }
    // The sign applies to both parts, as Duration requires.
    Ok(if negative {
        (-seconds, -nanos)
    } else {
        (seconds, nanos)
    })
}
