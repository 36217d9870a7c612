//! Building the gRPC errors the stubs answer with, including `google.rpc` rich error details.

use prost::Message;
use tonic::{Code, Status};

use crate::proto::google::rpc;

/// The type URL under which a `google.rpc.BadRequest` is packed into an `Any`.
const BAD_REQUEST_TYPE_URL: &str = "type.googleapis.com/google.rpc.BadRequest";

/// An `INVALID_ARGUMENT` status naming one bad field.
///
/// The message is `"<field> <description>"`; the same field and description travel as a
/// `google.rpc.BadRequest` detail inside `grpc-status-details-bin`, so clients that decode
/// rich errors see which field was wrong.
pub(crate) fn bad_request(field: &str, description: &str) -> Status {
    let message = format!("{field} {description}");
    let bad_request = rpc::BadRequest {
        field_violations: vec![rpc::bad_request::FieldViolation {
            field: field.to_owned(),
            description: description.to_owned(),
            ..Default::default()
        }],
    };
    let status = rpc::Status {
        code: Code::InvalidArgument as i32,
        message: message.clone(),
        details: vec![prost_types::Any {
            type_url: BAD_REQUEST_TYPE_URL.to_owned(),
            value: bad_request.encode_to_vec(),
        }],
    };
    Status::with_details(
        Code::InvalidArgument,
        message,
        status.encode_to_vec().into(),
    )
}

/// The `NOT_FOUND` status for a policy id the store does not hold.
pub(crate) fn policy_not_found(id: &str) -> Status {
    Status::not_found(format!("policy {id} not found"))
}

/// Parses a status code given as a number (`14`) or a name (`UNAVAILABLE`, any case).
///
/// Names and numbers are those of `google/rpc/code.proto`. `OK` is refused because a
/// failure cannot carry it.
pub(crate) fn parse_code(text: &str) -> Option<Code> {
    let text = text.trim();
    let number = match text.parse::<i32>() {
        Ok(number) => number,
        Err(_) => rpc::Code::from_str_name(&text.to_ascii_uppercase())? as i32,
    };
    match number {
        1..=16 => Some(Code::from_i32(number)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_codes_by_number_and_by_name_in_any_case() {
        assert_eq!(parse_code("14"), Some(Code::Unavailable));
        assert_eq!(parse_code("unavailable"), Some(Code::Unavailable));
        assert_eq!(
            parse_code(" Failed_Precondition "),
            Some(Code::FailedPrecondition)
        );
        assert_eq!(parse_code("16"), Some(Code::Unauthenticated));
    }

    #[test]
    fn refuses_ok_and_unknown_codes() {
        assert_eq!(parse_code("0"), None);
        assert_eq!(parse_code("OK"), None);
        assert_eq!(parse_code("17"), None);
        assert_eq!(parse_code("-1"), None);
        assert_eq!(parse_code("NOPE"), None);
    }

    #[test]
    fn bad_request_carries_the_field_violation_as_a_detail() {
        let status = bad_request("policy_name", "must not be empty");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "policy_name must not be empty");
        let decoded = rpc::Status::decode(status.details()).expect("details decode");
        assert_eq!(decoded.code, Code::InvalidArgument as i32);
        assert_eq!(decoded.details.len(), 1);
        assert_eq!(decoded.details[0].type_url, BAD_REQUEST_TYPE_URL);
        let detail = rpc::BadRequest::decode(decoded.details[0].value.as_slice()).expect("detail");
        assert_eq!(detail.field_violations[0].field, "policy_name");
        assert_eq!(detail.field_violations[0].description, "must not be empty");
    }
}
