//! Checks shared by the fuzz targets: what "well-formed" means for text that leaves the resolver.

use mta_sts::Domain;

/// Panics unless `text` is one line of printable ASCII (what every error `Display` must be:
/// the text reaches MTA logs, socketmap replies and Exim's yield).
pub fn assert_printable_line(text: &str, what: &str) {
    assert!(text.bytes().all(|b| (b' '..=b'~').contains(&b)), "{what}: not one printable ASCII line: {text:?}");
}

/// Panics if `text` holds a line break, NUL or any other control character (LF, CR, VT, FF,
/// NEL, U+2028 and U+2029 included).
pub fn assert_one_line(text: &str, what: &str) {
    assert!(
        !text.chars().any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}'),
        "{what}: control character or line break in {text:?}"
    );
}

/// Whether `name` is a lower-case LDH host name exactly as [`Domain::parse`] would produce it.
pub fn is_ldh_name(name: &str) -> bool {
    Domain::parse(name).is_ok_and(|d| d.as_str() == name)
}

/// Splits `data` at 0xff bytes, which never occur in UTF-8: the fields of a structured input.
pub fn fields(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|&b| b == 0xff)
}
