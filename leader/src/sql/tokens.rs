//! Token helpers the dialect's hand-written parsers share. A leaf.

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

/// Whether `t` is the unquoted word `w` (any case).
pub(crate) fn is_word(t: &TokenWithSpan, w: &str) -> bool {
    matches!(&t.token, Token::Word(word) if word.quote_style.is_none() && word.value.eq_ignore_ascii_case(w))
}
