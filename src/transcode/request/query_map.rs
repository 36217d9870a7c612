//! Map fields from the query string, in grpc-gateway's syntax: `labels[env]=prod` sets the entry
//! `env` of the map field `labels` (a dotted path reaches maps in nested messages).
//!
//! Stricter than grpc-gateway, like the rest of the query binding: the key must parse as the
//! map's key type (string, any integer type, bool), values must be scalars or enums (a message
//! value has no one-string form), and a key given twice is an error instead of last-one-wins.

use prost_reflect::{DynamicMessage, FieldDescriptor, MapKey, ReflectMessage as _, Value};

use super::{
    BodyRule, RequestError, in_body, invalid_parameter, leaf, parent_along, parse_binding_value,
    walk,
};
use crate::transcode::json::map_key_from_text;

/// The decoded name of one `path[key]=value` parameter, and its two parts.
pub(super) struct MapParameter<'a> {
    name: &'a str,
    path: &'a str,
    key: &'a str,
}

impl<'a> MapParameter<'a> {
    /// Splits a decoded name `path[key]`; `None` when the name does not end in `[…]`.
    pub(super) fn parse(name: &'a str) -> Option<Self> {
        let (path, key) = name.strip_suffix(']')?.split_once('[')?;
        Some(MapParameter { name, path, key })
    }

    /// Inserts the entry with the (percent-decoded) `value` into `msg`; an unknown field is
    /// skipped when `ignore_unknown`.
    pub(super) fn bind(
        &self,
        msg: &mut DynamicMessage,
        body_rule: &BodyRule,
        value: &str,
        ignore_unknown: bool,
    ) -> Result<(), RequestError> {
        let invalid = |reason: String| invalid_parameter(self.name, reason);
        let chain = match walk(&msg.descriptor(), self.path) {
            Ok(chain) => chain,
            Err(err) if err.unknown && ignore_unknown => return Ok(()),
            Err(err) if err.unknown => {
                return Err(RequestError::UnknownQueryParameter {
                    name: self.name.to_owned(),
                });
            }
            Err(err) => return Err(invalid(err.reason)),
        };
        if in_body(body_rule, &chain) {
            return Err(RequestError::QueryParameterInBody {
                name: self.name.to_owned(),
            });
        }
        let (key, value) = self.entry(leaf(&chain).map_err(invalid)?, value)?;
        let (target, last) = parent_along(msg, &chain).map_err(invalid)?;
        let Value::Map(entries) = target.get_field_mut(last) else {
            return Err(invalid(format!("`{}` is not a map field", last.name())));
        };
        if entries.contains_key(&key) {
            return Err(invalid(format!(
                "map key `{}` is given more than once",
                self.key
            )));
        }
        entries.insert(key, value);
        Ok(())
    }

    /// The parsed key and value for the map field `field`.
    fn entry(&self, field: &FieldDescriptor, text: &str) -> Result<(MapKey, Value), RequestError> {
        let invalid = |reason: String| invalid_parameter(self.name, reason);
        let entry = match field.kind().as_message() {
            Some(entry) if field.is_map() => entry.clone(),
            _ => {
                return Err(invalid(format!(
                    "`{}` is not a map field; `[key]` selects an entry of a map",
                    field.name()
                )));
            }
        };
        let value_field = entry.map_entry_value_field();
        if let Some(desc) = value_field.kind().as_message() {
            return Err(invalid(format!(
                "the values of map `{}` are messages ({}); only scalar values can come from the query",
                field.name(),
                desc.full_name()
            )));
        }
        let key =
            map_key_from_text(&entry.map_entry_key_field().kind(), self.key).map_err(invalid)?;
        let value = parse_binding_value(&value_field, text).map_err(invalid)?;
        Ok((key, value))
    }
}
