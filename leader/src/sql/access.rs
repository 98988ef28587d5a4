//! Redshift's identity and privilege statements, which sqlparser parses in other
//! dialects' shapes or not at all: `CREATE | ALTER | DROP USER`, `CREATE | ALTER | DROP
//! GROUP | ROLE`, `GRANT` and `REVOKE` (of object, column and system privileges, and of
//! roles), `ALTER DEFAULT PRIVILEGES`, `… OWNER TO`. The dialect's statement hook parses
//! them into an [`AccessStatement`]; forms Basalt does not implement (privileges on
//! functions, datashares or IAM roles, EXTERNALID, …) become a 0A000 error naming them,
//! never a statement that quietly does less.

use datafusion::sql::sqlparser::ast::ObjectName;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

use super::names::ident_name;
use super::tokens::is_word;
use crate::error::{LeaderError, code};
use crate::sql_err;

/// One parsed identity or privilege statement.
#[derive(Debug, Clone, PartialEq)]
pub enum AccessStatement {
    CreateUser {
        name: String,
        options: Vec<UserOption>,
    },
    AlterUser {
        name: String,
        change: UserChange,
    },
    DropUser {
        if_exists: bool,
        names: Vec<String>,
    },
    CreateGroup {
        name: String,
        users: Vec<String>,
    },
    AlterGroup {
        name: String,
        change: GroupChange,
    },
    DropGroup {
        names: Vec<String>,
    },
    Grant(GrantStatement),
    Revoke {
        grant: GrantStatement,
        /// `REVOKE GRANT OPTION FOR …`: only the right to grant goes.
        grant_option_for: bool,
    },
    CreateRole {
        name: String,
    },
    /// `DROP ROLE r [FORCE | RESTRICT]`.
    DropRole {
        name: String,
        force: bool,
    },
    RenameRole {
        name: String,
        to: String,
    },
    /// `ALTER ROLE r OWNER TO user`.
    AlterRoleOwner {
        name: String,
        owner: String,
    },
    /// `GRANT ROLE r, … TO {user [WITH ADMIN OPTION] | ROLE r2}, …`.
    GrantRole {
        roles: Vec<String>,
        to: Vec<GranteeName>,
        admin_option: bool,
    },
    /// `REVOKE [ADMIN OPTION FOR] ROLE r, … FROM {user | ROLE r2}, …`.
    RevokeRole {
        roles: Vec<String>,
        from: Vec<GranteeName>,
        admin_option_only: bool,
    },
    /// `RESET SESSION AUTHORIZATION` (sqlparser parses the SET form).
    ResetSessionAuthorization,
    AlterDefaultPrivileges(DefaultPrivileges),
    /// `ALTER TABLE | VIEW | SCHEMA name OWNER TO user`.
    AlterOwner {
        schema: bool,
        name: ObjectName,
        /// The new owner; None for CURRENT_USER / SESSION_USER.
        owner: Option<String>,
    },
}

/// An option of CREATE USER / ALTER USER.
#[derive(Debug, Clone, PartialEq)]
pub enum UserOption {
    /// `PASSWORD 'text' | 'md5…'`; None for `PASSWORD DISABLE`.
    Password(Option<String>),
    CreateDb(bool),
    /// CREATEUSER (a superuser) / NOCREATEUSER.
    CreateUser(bool),
    /// `SYSLOG ACCESS UNRESTRICTED` (true) / `RESTRICTED`.
    SyslogUnrestricted(bool),
    InGroup(Vec<String>),
    /// `VALID UNTIL 'timestamp'` as written (`'infinity'` included).
    ValidUntil(String),
    /// `CONNECTION LIMIT n`; None for UNLIMITED.
    ConnectionLimit(Option<u32>),
    /// `SESSION TIMEOUT n` seconds.
    SessionTimeout(u32),
}

/// What ALTER USER changes.
#[derive(Debug, Clone, PartialEq)]
pub enum UserChange {
    Options(Vec<UserOption>),
    RenameTo(String),
    /// `SET name TO value` (None for `TO DEFAULT`).
    Set(String, Option<String>),
    Reset(String),
}

/// What ALTER GROUP changes.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupChange {
    Add(Vec<String>),
    Drop(Vec<String>),
    RenameTo(String),
}

/// `GRANT privileges ON objects TO grantees` (REVOKE has the same parts).
#[derive(Debug, Clone, PartialEq)]
pub struct GrantStatement {
    /// Keywords as written (upper case, words joined by one space: `CREATE USER`); empty
    /// for `ALL [PRIVILEGES]`.
    pub privileges: Vec<String>,
    /// The column list of a column-level grant (`SELECT (a, b), UPDATE (b)` or
    /// `ALL (a)`): for each privilege of `privileges` (one entry for `ALL`), the columns
    /// it is given on. Empty for a grant on whole objects.
    pub columns: Vec<Vec<String>>,
    pub objects: GrantObjects,
    pub grantees: Vec<GranteeName>,
    /// `WITH GRANT OPTION` (GRANT only).
    pub with_grant_option: bool,
    /// `REVOKE … CASCADE`: what the grantees granted on from what is revoked goes too.
    pub cascade: bool,
}

/// What a GRANT names.
#[derive(Debug, Clone, PartialEq)]
pub enum GrantObjects {
    Tables(Vec<ObjectName>),
    AllTablesInSchema(Vec<String>),
    Schemas(Vec<String>),
    Databases(Vec<String>),
    /// System privileges (`GRANT CREATE USER, VACUUM TO ROLE r`): no ON clause.
    System,
}

/// `ALTER DEFAULT PRIVILEGES [FOR USER u, …] [IN SCHEMA s, …] {GRANT | REVOKE} … ON
/// {TABLES | FUNCTIONS | PROCEDURES} {TO | FROM} …`.
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultPrivileges {
    pub for_users: Vec<String>,
    pub schemas: Vec<String>,
    pub revoke: bool,
    /// `REVOKE GRANT OPTION FOR`.
    pub grant_option_for: bool,
    /// Privilege keywords (empty for ALL); `objects` says what they apply to.
    pub privileges: Vec<String>,
    /// `TABLES`, `FUNCTIONS` or `PROCEDURES`.
    pub objects: String,
    pub grantees: Vec<GranteeName>,
    pub with_grant_option: bool,
}

/// Who a GRANT names.
#[derive(Debug, Clone, PartialEq)]
pub enum GranteeName {
    Public,
    User(String),
    Group(String),
    /// `ROLE r` (refused until roles exist).
    Role(String),
}

/// Whether the statement at `parser` is one of [`AccessStatement`]'s (or a form of one
/// Basalt refuses).
pub fn is_access_statement(parser: &Parser) -> bool {
    let first = parser.peek_token();
    let second = parser.peek_nth_token(1);
    if is_owner_change(parser) || is_reset_session_authorization(parser) {
        return true;
    }
    if is_word(&first, "ALTER")
        && is_word(&second, "DEFAULT")
        && is_word(&parser.peek_nth_token(2), "PRIVILEGES")
    {
        return true;
    }
    (is_word(&first, "GRANT") || is_word(&first, "REVOKE"))
        || ((is_word(&first, "CREATE") || is_word(&first, "ALTER") || is_word(&first, "DROP"))
            && (is_word(&second, "USER") || is_word(&second, "GROUP") || is_word(&second, "ROLE")))
}

fn is_reset_session_authorization(parser: &Parser) -> bool {
    is_word(&parser.peek_token(), "RESET")
        && is_word(&parser.peek_nth_token(1), "SESSION")
        && is_word(&parser.peek_nth_token(2), "AUTHORIZATION")
}

/// `ALTER TABLE | VIEW | SCHEMA name OWNER TO …` (the name may be qualified).
fn is_owner_change(parser: &Parser) -> bool {
    let kind = parser.peek_nth_token(1);
    if !is_word(&parser.peek_token(), "ALTER")
        || !(is_word(&kind, "TABLE") || is_word(&kind, "VIEW") || is_word(&kind, "SCHEMA"))
    {
        return false;
    }
    // ALTER kind a [. b [. c]] OWNER TO: the name's parts alternate with dots.
    let mut i = 2;
    while parser.peek_nth_token(i + 1).token == Token::Period && i < 6 {
        i += 2;
    }
    is_word(&parser.peek_nth_token(i + 1), "OWNER") && is_word(&parser.peek_nth_token(i + 2), "TO")
}

fn parse_owner_change(parser: &mut Parser) -> Result<AccessStatement, ParserError> {
    parser.next_token();
    let schema = is_word(&parser.next_token(), "SCHEMA");
    let name = parser.parse_object_name(false)?;
    if !(word(parser, "OWNER") && parser.parse_keyword(Keyword::TO)) {
        return parser.expected("OWNER TO", parser.peek_token());
    }
    let owner = if word(parser, "CURRENT_USER") || word(parser, "SESSION_USER") {
        None
    } else {
        Some(self::name(parser)?)
    };
    Ok(AccessStatement::AlterOwner {
        schema,
        name,
        owner,
    })
}

/// The statement at `parser`, which [`is_access_statement`] recognised. The outer error
/// is a syntax error; the inner one a form Basalt does not implement (0A000).
pub fn parse_access(
    parser: &mut Parser,
) -> Result<Result<AccessStatement, LeaderError>, ParserError> {
    if is_owner_change(parser) {
        return parse_owner_change(parser).map(Ok);
    }
    if is_reset_session_authorization(parser) {
        for _ in 0..3 {
            parser.next_token();
        }
        return Ok(Ok(AccessStatement::ResetSessionAuthorization));
    }
    if is_word(&parser.peek_token(), "ALTER") && is_word(&parser.peek_nth_token(1), "DEFAULT") {
        for _ in 0..3 {
            parser.next_token();
        }
        return alter_default_privileges(parser)
            .map(|d| d.map(AccessStatement::AlterDefaultPrivileges));
    }
    let verb = parser.next_token().token.to_string().to_ascii_uppercase();
    match verb.as_str() {
        "GRANT" if is_word(&parser.peek_token(), "ROLE") => {
            parser.next_token();
            let roles = role_names(parser)?;
            if !parser.parse_keyword(Keyword::TO) {
                return parser.expected("TO", parser.peek_token());
            }
            let (to, admin_option) = grantees(parser)?;
            let admin_option = admin_option
                || parser.parse_keywords(&[Keyword::WITH, Keyword::ADMIN, Keyword::OPTION]);
            Ok(Ok(AccessStatement::GrantRole {
                roles,
                to,
                admin_option,
            }))
        }
        "GRANT" => Ok(parse_grant(parser)?.map(AccessStatement::Grant)),
        "REVOKE"
            if is_word(&parser.peek_token(), "ROLE")
                || (is_word(&parser.peek_token(), "ADMIN")
                    && is_word(&parser.peek_nth_token(3), "ROLE")) =>
        {
            let admin_option_only =
                parser.parse_keywords(&[Keyword::ADMIN, Keyword::OPTION, Keyword::FOR]);
            parser.next_token();
            let roles = role_names(parser)?;
            if !parser.parse_keyword(Keyword::FROM) {
                return parser.expected("FROM", parser.peek_token());
            }
            let (from, _) = grantees(parser)?;
            if let Some(refused) = cascade_or_restrict(parser) {
                return Ok(Err(refused));
            }
            Ok(Ok(AccessStatement::RevokeRole {
                roles,
                from,
                admin_option_only,
            }))
        }
        "REVOKE" => {
            let grant_option_for =
                parser.parse_keywords(&[Keyword::GRANT, Keyword::OPTION, Keyword::FOR]);
            Ok(parse_revoke(parser)?.map(|grant| AccessStatement::Revoke {
                grant,
                grant_option_for,
            }))
        }
        _ => {
            let noun = parser.next_token().token.to_string().to_ascii_uppercase();
            match (verb.as_str(), noun.as_str()) {
                ("CREATE", "ROLE") => {
                    let name = role_name(parser)?;
                    if word(parser, "EXTERNALID") {
                        skip_statement(parser);
                        return Ok(Err(sql_err!(
                            code::FEATURE_NOT_SUPPORTED,
                            "EXTERNALID is not supported yet"
                        )));
                    }
                    Ok(Ok(AccessStatement::CreateRole { name }))
                }
                ("DROP", "ROLE") => {
                    let name = role_name(parser)?;
                    let force = word(parser, "FORCE");
                    if !force {
                        let _ = parser.parse_keyword(Keyword::RESTRICT);
                    }
                    Ok(Ok(AccessStatement::DropRole { name, force }))
                }
                ("ALTER", "ROLE") => {
                    let name = role_name(parser)?;
                    if parser.parse_keywords(&[Keyword::RENAME, Keyword::TO]) {
                        let to = role_name(parser)?;
                        return Ok(Ok(AccessStatement::RenameRole { name, to }));
                    }
                    if word(parser, "OWNER") && parser.parse_keyword(Keyword::TO) {
                        let owner = self::name(parser)?;
                        return Ok(Ok(AccessStatement::AlterRoleOwner { name, owner }));
                    }
                    skip_statement(parser);
                    Ok(Err(sql_err!(
                        code::FEATURE_NOT_SUPPORTED,
                        "ALTER ROLE is supported only as ALTER ROLE … RENAME TO and ALTER ROLE … OWNER TO"
                    )))
                }
                ("CREATE", "USER") => {
                    let name = name(parser)?;
                    let options = user_options(parser)?;
                    Ok(options.map(|options| AccessStatement::CreateUser { name, options }))
                }
                ("ALTER", "USER") => {
                    let name = name(parser)?;
                    Ok(alter_user(parser)?
                        .map(|change| AccessStatement::AlterUser { name, change }))
                }
                ("DROP", "USER") => {
                    let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
                    let names = names(parser)?;
                    Ok(Ok(AccessStatement::DropUser { if_exists, names }))
                }
                ("CREATE", "GROUP") => {
                    let name = name(parser)?;
                    let _ = parser.parse_keyword(Keyword::WITH);
                    let users = if parser.parse_keyword(Keyword::USER) {
                        names(parser)?
                    } else {
                        vec![]
                    };
                    Ok(Ok(AccessStatement::CreateGroup { name, users }))
                }
                ("ALTER", "GROUP") => {
                    let name = name(parser)?;
                    let change = if parser.parse_keywords(&[Keyword::ADD, Keyword::USER]) {
                        GroupChange::Add(names(parser)?)
                    } else if parser.parse_keywords(&[Keyword::DROP, Keyword::USER]) {
                        GroupChange::Drop(names(parser)?)
                    } else if parser.parse_keywords(&[Keyword::RENAME, Keyword::TO]) {
                        GroupChange::RenameTo(self::name(parser)?)
                    } else {
                        return parser
                            .expected("ADD USER, DROP USER or RENAME TO", parser.peek_token());
                    };
                    Ok(Ok(AccessStatement::AlterGroup { name, change }))
                }
                ("DROP", "GROUP") => Ok(Ok(AccessStatement::DropGroup {
                    names: names(parser)?,
                })),
                _ => parser.expected("USER, GROUP or ROLE", parser.peek_token()),
            }
        }
    }
}

/// Consume the rest of a statement Basalt refuses, so the next one parses.
fn skip_statement(parser: &mut Parser) {
    while !matches!(parser.peek_token().token, Token::SemiColon | Token::EOF) {
        parser.next_token();
    }
}

fn name(parser: &mut Parser) -> Result<String, ParserError> {
    Ok(ident_name(&parser.parse_identifier()?))
}

/// A role's name: an identifier, or a system role's `sys:name` (written unquoted in
/// Redshift's examples).
fn role_name(parser: &mut Parser) -> Result<String, ParserError> {
    let first = name(parser)?;
    if parser.peek_token().token == Token::Colon {
        parser.next_token();
        return Ok(format!("{first}:{}", name(parser)?));
    }
    Ok(first)
}

fn role_names(parser: &mut Parser) -> Result<Vec<String>, ParserError> {
    let mut out = vec![role_name(parser)?];
    while parser.consume_token(&Token::Comma) {
        out.push(role_name(parser)?);
    }
    Ok(out)
}

fn names(parser: &mut Parser) -> Result<Vec<String>, ParserError> {
    let mut out = vec![name(parser)?];
    while parser.consume_token(&Token::Comma) {
        out.push(name(parser)?);
    }
    Ok(out)
}

/// Consume the unquoted word `w` if it is next.
fn word(parser: &mut Parser, w: &str) -> bool {
    if is_word(&parser.peek_token(), w) {
        parser.next_token();
        true
    } else {
        false
    }
}

fn unsigned(parser: &mut Parser) -> Result<u32, ParserError> {
    let t = parser.next_token();
    match &t.token {
        Token::Number(n, _) => n
            .parse()
            .map_err(|_| ParserError::ParserError(format!("Expected: a number, found: {n}"))),
        _ => parser.expected("a number", t),
    }
}

/// The options of CREATE USER / ALTER USER, up to the end of the statement.
fn user_options(parser: &mut Parser) -> Result<Result<Vec<UserOption>, LeaderError>, ParserError> {
    let _ = parser.parse_keyword(Keyword::WITH);
    let mut options = vec![];
    loop {
        let option = if word(parser, "PASSWORD") {
            if word(parser, "DISABLE") {
                UserOption::Password(None)
            } else {
                UserOption::Password(Some(parser.parse_literal_string()?))
            }
        } else if word(parser, "CREATEDB") {
            UserOption::CreateDb(true)
        } else if word(parser, "NOCREATEDB") {
            UserOption::CreateDb(false)
        } else if word(parser, "CREATEUSER") {
            UserOption::CreateUser(true)
        } else if word(parser, "NOCREATEUSER") {
            UserOption::CreateUser(false)
        } else if word(parser, "SYSLOG") {
            if !word(parser, "ACCESS") {
                return parser.expected("ACCESS", parser.peek_token());
            }
            if word(parser, "UNRESTRICTED") {
                UserOption::SyslogUnrestricted(true)
            } else if word(parser, "RESTRICTED") {
                UserOption::SyslogUnrestricted(false)
            } else {
                return parser.expected("RESTRICTED or UNRESTRICTED", parser.peek_token());
            }
        } else if parser.parse_keywords(&[Keyword::IN, Keyword::GROUP]) {
            UserOption::InGroup(names(parser)?)
        } else if word(parser, "VALID") {
            if !word(parser, "UNTIL") {
                return parser.expected("UNTIL", parser.peek_token());
            }
            UserOption::ValidUntil(parser.parse_literal_string()?)
        } else if word(parser, "CONNECTION") {
            if !word(parser, "LIMIT") {
                return parser.expected("LIMIT", parser.peek_token());
            }
            if word(parser, "UNLIMITED") {
                UserOption::ConnectionLimit(None)
            } else {
                UserOption::ConnectionLimit(Some(unsigned(parser)?))
            }
        } else if word(parser, "SESSION") {
            if !word(parser, "TIMEOUT") {
                return parser.expected("TIMEOUT", parser.peek_token());
            }
            UserOption::SessionTimeout(unsigned(parser)?)
        } else if word(parser, "EXTERNALID") {
            skip_statement(parser);
            return Ok(Err(sql_err!(
                code::FEATURE_NOT_SUPPORTED,
                "EXTERNALID is not supported yet"
            )));
        } else if matches!(parser.peek_token().token, Token::SemiColon | Token::EOF) {
            break;
        } else {
            return parser.expected("a user option", parser.peek_token());
        };
        options.push(option);
    }
    Ok(Ok(options))
}

fn alter_user(parser: &mut Parser) -> Result<Result<UserChange, LeaderError>, ParserError> {
    if parser.parse_keywords(&[Keyword::RENAME, Keyword::TO]) {
        return Ok(Ok(UserChange::RenameTo(name(parser)?)));
    }
    if parser.parse_keyword(Keyword::SET) {
        let param = setting_name(parser)?;
        if !parser.parse_keyword(Keyword::TO) && !parser.consume_token(&Token::Eq) {
            return parser.expected("TO or =", parser.peek_token());
        }
        if parser.parse_keyword(Keyword::DEFAULT) {
            return Ok(Ok(UserChange::Set(param, None)));
        }
        // A list (`search_path TO a, b`) is kept as SET would keep it: joined by ", ".
        let mut values = vec![];
        loop {
            let t = parser.next_token();
            values.push(match t.token {
                Token::SingleQuotedString(s) => s,
                Token::Number(n, _) => n,
                Token::Word(w) if w.quote_style.is_some() => w.value,
                Token::Word(w) => w.value.to_lowercase(),
                _ => return parser.expected("a value", t),
            });
            if !parser.consume_token(&Token::Comma) {
                break;
            }
        }
        return Ok(Ok(UserChange::Set(param, Some(values.join(", ")))));
    }
    if parser.parse_keyword(Keyword::RESET) {
        return Ok(Ok(UserChange::Reset(setting_name(parser)?)));
    }
    Ok(user_options(parser)?.map(UserChange::Options))
}

fn setting_name(parser: &mut Parser) -> Result<String, ParserError> {
    Ok(parser.parse_identifier()?.value.to_lowercase())
}

/// `privileges ON objects TO grantees [WITH GRANT OPTION]`.
fn parse_grant(parser: &mut Parser) -> Result<Result<GrantStatement, LeaderError>, ParserError> {
    let (privileges, columns, objects) = match privileges_on(parser, Keyword::TO)? {
        Ok(parts) => parts,
        Err(e) => return Ok(Err(e)),
    };
    if !parser.parse_keyword(Keyword::TO) {
        return parser.expected("TO", parser.peek_token());
    }
    let (grantees, with_grant_option) = grantees(parser)?;
    if parser.parse_keywords(&[Keyword::WITH, Keyword::GRANT, Keyword::OPTION]) {
        return Ok(Ok(GrantStatement {
            privileges,
            columns,
            objects,
            grantees,
            with_grant_option: true,
            cascade: false,
        }));
    }
    Ok(Ok(GrantStatement {
        privileges,
        columns,
        objects,
        grantees,
        with_grant_option,
        cascade: false,
    }))
}

/// `privileges ON objects FROM grantees [CASCADE | RESTRICT]`.
fn parse_revoke(parser: &mut Parser) -> Result<Result<GrantStatement, LeaderError>, ParserError> {
    let (privileges, columns, objects) = match privileges_on(parser, Keyword::FROM)? {
        Ok(parts) => parts,
        Err(e) => return Ok(Err(e)),
    };
    if !parser.parse_keyword(Keyword::FROM) {
        return parser.expected("FROM", parser.peek_token());
    }
    let (grantees, _) = grantees(parser)?;
    let cascade = parser.parse_keyword(Keyword::CASCADE);
    if !cascade {
        let _ = parser.parse_keyword(Keyword::RESTRICT);
    }
    Ok(Ok(GrantStatement {
        privileges,
        columns,
        objects,
        grantees,
        with_grant_option: false,
        cascade,
    }))
}

/// The trailing `RESTRICT` of REVOKE ROLE and of ALTER DEFAULT PRIVILEGES … REVOKE, or a
/// `CASCADE`, which has nothing to cascade to there: refused.
fn cascade_or_restrict(parser: &mut Parser) -> Option<LeaderError> {
    if parser.parse_keyword(Keyword::CASCADE) {
        return Some(sql_err!(
            code::FEATURE_NOT_SUPPORTED,
            "CASCADE is supported only by REVOKE of privileges on objects"
        ));
    }
    let _ = parser.parse_keyword(Keyword::RESTRICT);
    None
}

/// Redshift privileges Basalt has no objects for yet (functions, procedures,
/// languages, datashares, models, IAM roles): refused with 0A000 rather than a syntax error.
const UNSUPPORTED_PRIVILEGE_WORDS: &[&str] = &["EXECUTE", "ASSUMEROLE", "SHARE"];

type PrivilegesOn = (Vec<String>, Vec<Vec<String>>, GrantObjects);

/// `privileges [(columns)], … [ON objects]` up to the TO (GRANT) or FROM (REVOKE) that
/// names the grantees. Each privilege is its words joined by one space, upper case
/// (`CREATE OR REPLACE VIEW`); without ON they are system privileges.
fn privileges_on(
    parser: &mut Parser,
    grantees_follow: Keyword,
) -> Result<Result<PrivilegesOn, LeaderError>, ParserError> {
    let mut privileges = vec![];
    let mut columns = vec![];
    let mut all = false;
    loop {
        let mut words: Vec<String> = vec![];
        loop {
            let t = parser.peek_token();
            let stop = match &t.token {
                Token::Comma | Token::LParen | Token::SemiColon | Token::EOF => true,
                Token::Word(w) => {
                    w.quote_style.is_none()
                        && (w.keyword == Keyword::ON || w.keyword == grantees_follow)
                }
                _ => return parser.expected("a privilege", t),
            };
            if stop {
                break;
            }
            words.push(parser.next_token().token.to_string().to_ascii_uppercase());
        }
        if words.is_empty() {
            return parser.expected("a privilege", parser.peek_token());
        }
        let phrase = words.join(" ");
        if phrase == "ALL" || phrase == "ALL PRIVILEGES" {
            all = true;
        } else if let Some(w) = UNSUPPORTED_PRIVILEGE_WORDS.iter().find(|w| **w == words[0]) {
            skip_statement(parser);
            return Ok(Err(sql_err!(
                code::FEATURE_NOT_SUPPORTED,
                "GRANT {w} is not supported yet"
            )));
        } else {
            privileges.push(if phrase == "TEMPORARY" {
                "TEMP".to_string()
            } else {
                phrase
            });
        }
        if parser.consume_token(&Token::LParen) {
            let mut cols = vec![name(parser)?];
            while parser.consume_token(&Token::Comma) {
                cols.push(name(parser)?);
            }
            parser.expect_token(&Token::RParen)?;
            columns.push(cols);
        } else if !columns.is_empty() {
            return parser.expected("a column list", parser.peek_token());
        }
        if !parser.consume_token(&Token::Comma) {
            break;
        }
    }
    if all && !privileges.is_empty() {
        return parser.expected("ON after ALL", parser.peek_token());
    }
    if !columns.is_empty() && columns.len() != privileges.len().max(1) {
        return parser.expected("a column list after every privilege", parser.peek_token());
    }
    if !parser.parse_keyword(Keyword::ON) {
        if !columns.is_empty() {
            return parser.expected("ON", parser.peek_token());
        }
        return Ok(Ok((privileges, columns, GrantObjects::System)));
    }
    let objects = if parser.parse_keyword(Keyword::SCHEMA) {
        GrantObjects::Schemas(names(parser)?)
    } else if parser.parse_keyword(Keyword::DATABASE) {
        GrantObjects::Databases(names(parser)?)
    } else if parser.parse_keywords(&[Keyword::ALL, Keyword::TABLES, Keyword::IN, Keyword::SCHEMA])
    {
        GrantObjects::AllTablesInSchema(names(parser)?)
    } else if [
        "FUNCTION",
        "PROCEDURE",
        "LANGUAGE",
        "ALL",
        "DATASHARE",
        "MODEL",
    ]
    .iter()
    .any(|w| is_word(&parser.peek_token(), w))
    {
        let what = parser.peek_token().token.to_string().to_ascii_uppercase();
        skip_statement(parser);
        return Ok(Err(sql_err!(
            code::FEATURE_NOT_SUPPORTED,
            "privileges ON {what} are not supported yet"
        )));
    } else {
        let _ = parser.parse_keyword(Keyword::TABLE);
        let mut tables = vec![parser.parse_object_name(false)?];
        while parser.consume_token(&Token::Comma) {
            tables.push(parser.parse_object_name(false)?);
        }
        GrantObjects::Tables(tables)
    };
    if !columns.is_empty() && !matches!(&objects, GrantObjects::Tables(t) if t.len() == 1) {
        return parser.expected("one table for column privileges", parser.peek_token());
    }
    Ok(Ok((privileges, columns, objects)))
}

/// What follows `ALTER DEFAULT PRIVILEGES`.
fn alter_default_privileges(
    parser: &mut Parser,
) -> Result<Result<DefaultPrivileges, LeaderError>, ParserError> {
    let mut for_users = vec![];
    let mut schemas = vec![];
    loop {
        if parser.parse_keyword(Keyword::FOR) {
            if !(parser.parse_keyword(Keyword::USER) || parser.parse_keyword(Keyword::ROLE)) {
                return parser.expected("USER", parser.peek_token());
            }
            for_users.extend(names(parser)?);
        } else if parser.parse_keywords(&[Keyword::IN, Keyword::SCHEMA]) {
            schemas.extend(names(parser)?);
        } else {
            break;
        }
    }
    let revoke = if parser.parse_keyword(Keyword::GRANT) {
        false
    } else if parser.parse_keyword(Keyword::REVOKE) {
        true
    } else {
        return parser.expected("GRANT or REVOKE", parser.peek_token());
    };
    let grant_option_for =
        revoke && parser.parse_keywords(&[Keyword::GRANT, Keyword::OPTION, Keyword::FOR]);
    let follow = if revoke { Keyword::FROM } else { Keyword::TO };
    let mut privileges = vec![];
    loop {
        let mut words: Vec<String> = vec![];
        while !matches!(
            parser.peek_token().token,
            Token::Comma | Token::SemiColon | Token::EOF
        ) && !parser.peek_keyword(Keyword::ON)
        {
            words.push(parser.next_token().token.to_string().to_ascii_uppercase());
        }
        let phrase = words.join(" ");
        if phrase != "ALL" && phrase != "ALL PRIVILEGES" {
            privileges.push(if phrase == "TEMPORARY" {
                "TEMP".into()
            } else {
                phrase
            });
        }
        if !parser.consume_token(&Token::Comma) {
            break;
        }
    }
    if !parser.parse_keyword(Keyword::ON) {
        return parser.expected("ON", parser.peek_token());
    }
    let objects = parser.next_token().token.to_string().to_ascii_uppercase();
    if !["TABLES", "FUNCTIONS", "PROCEDURES"].contains(&objects.as_str()) {
        return parser.expected("TABLES, FUNCTIONS or PROCEDURES", parser.peek_token());
    }
    if !parser.parse_keyword(follow) {
        return parser.expected(if revoke { "FROM" } else { "TO" }, parser.peek_token());
    }
    let (grantees, mut with_grant_option) = grantees(parser)?;
    with_grant_option |=
        !revoke && parser.parse_keywords(&[Keyword::WITH, Keyword::GRANT, Keyword::OPTION]);
    if revoke && let Some(refused) = cascade_or_restrict(parser) {
        return Ok(Err(refused));
    }
    Ok(Ok(DefaultPrivileges {
        for_users,
        schemas,
        revoke,
        grant_option_for,
        privileges,
        objects,
        grantees,
        with_grant_option,
    }))
}

/// `{[USER] name [WITH GRANT OPTION] | GROUP g | ROLE r | PUBLIC} [, …]`; whether any
/// user grantee had WITH GRANT OPTION.
fn grantees(parser: &mut Parser) -> Result<(Vec<GranteeName>, bool), ParserError> {
    let mut out = vec![];
    let mut grant_option = false;
    loop {
        if parser.parse_keyword(Keyword::PUBLIC) {
            out.push(GranteeName::Public);
        } else if parser.parse_keyword(Keyword::GROUP) {
            out.push(GranteeName::Group(name(parser)?));
        } else if parser.parse_keyword(Keyword::ROLE) {
            out.push(GranteeName::Role(role_name(parser)?));
        } else {
            let _ = parser.parse_keyword(Keyword::USER);
            out.push(GranteeName::User(name(parser)?));
            if parser.peek_token().token != Token::Comma
                && is_word(&parser.peek_token(), "WITH")
                && is_word(&parser.peek_nth_token(1), "GRANT")
            {
                grant_option |=
                    parser.parse_keywords(&[Keyword::WITH, Keyword::GRANT, Keyword::OPTION]);
            } else if is_word(&parser.peek_token(), "WITH")
                && is_word(&parser.peek_nth_token(1), "ADMIN")
            {
                grant_option |=
                    parser.parse_keywords(&[Keyword::WITH, Keyword::ADMIN, Keyword::OPTION]);
            }
        }
        if !parser.consume_token(&Token::Comma) {
            break;
        }
    }
    Ok((out, grant_option))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse_sql;

    fn access(sql: &str) -> Option<AccessStatement> {
        parse_sql(sql).unwrap().remove(0).1.access
    }

    #[test]
    fn parses_redshifts_forms() {
        assert_eq!(
            access(
                "CREATE USER Alice WITH PASSWORD 'Secret123' CREATEDB IN GROUP g1, g2 VALID UNTIL '2027-01-01'"
            ),
            Some(AccessStatement::CreateUser {
                name: "alice".into(),
                options: vec![
                    UserOption::Password(Some("Secret123".into())),
                    UserOption::CreateDb(true),
                    UserOption::InGroup(vec!["g1".into(), "g2".into()]),
                    UserOption::ValidUntil("2027-01-01".into()),
                ],
            })
        );
        assert_eq!(
            access(
                "grant select, insert on table s.t, u to group g, bob with grant option, public"
            ),
            Some(AccessStatement::Grant(GrantStatement {
                privileges: vec!["SELECT".into(), "INSERT".into()],
                objects: GrantObjects::Tables(vec![
                    ObjectName::from(vec![
                        datafusion::sql::sqlparser::ast::Ident::new("s"),
                        datafusion::sql::sqlparser::ast::Ident::new("t"),
                    ]),
                    ObjectName::from(vec![datafusion::sql::sqlparser::ast::Ident::new("u")]),
                ]),
                grantees: vec![
                    GranteeName::Group("g".into()),
                    GranteeName::User("bob".into()),
                    GranteeName::Public,
                ],
                with_grant_option: true,
                columns: vec![],
                cascade: false,
            }))
        );
        assert!(matches!(
            access("grant select (a, b), update (b) on t to role analyst"),
            Some(AccessStatement::Grant(GrantStatement { privileges, columns, .. }))
                if privileges == ["SELECT", "UPDATE"]
                    && columns == [vec!["a".to_string(), "b".into()], vec!["b".into()]]
        ));
        assert!(matches!(
            access("grant create user, create or replace view, vacuum to role ops"),
            Some(AccessStatement::Grant(GrantStatement { privileges, objects: GrantObjects::System, grantees, .. }))
                if privileges == ["CREATE USER", "CREATE OR REPLACE VIEW", "VACUUM"]
                    && grantees == [GranteeName::Role("ops".into())]
        ));
        assert!(matches!(
            access("grant role sys:dba to alice"),
            Some(AccessStatement::GrantRole { roles, .. }) if roles == ["sys:dba"]
        ));
        assert!(matches!(
            access("alter default privileges for user etl in schema s grant select on tables to group g"),
            Some(AccessStatement::AlterDefaultPrivileges(d))
                if d.for_users == ["etl"] && d.schemas == ["s"] && !d.revoke
                    && d.privileges == ["SELECT"] && d.objects == "TABLES"
        ));
        assert!(matches!(
            access("alter table s.t owner to bob"),
            Some(AccessStatement::AlterOwner { schema: false, owner: Some(o), .. }) if o == "bob"
        ));
        // A column called owner is no owner change.
        assert_eq!(access("alter table t rename column owner to x"), None);
        assert_eq!(access("select 1"), None);
    }

    #[test]
    fn refuses_what_it_does_not_implement() {
        for (sql, message) in [
            (
                "create role r externalid 'x'",
                "EXTERNALID is not supported yet",
            ),
            (
                "grant execute on function f() to bob",
                "GRANT EXECUTE is not supported yet",
            ),
            (
                "kill 1",
                "KILL is not supported; use pg_terminate_backend(pid)",
            ),
        ] {
            let err = parse_sql(sql).unwrap_err();
            assert_eq!(
                err.sqlstate(),
                (code::FEATURE_NOT_SUPPORTED, message.into()),
                "{sql}"
            );
        }
    }
}
