//! What a COPY statement says: its target, source and options ([`CopySpec`]), checked
//! against each other and the table as Redshift does, into a [`PreparedCopy`] that says
//! how every worker reads its share.

use super::*;

/// The parts of a COPY statement Basalt acts on.
pub struct CopySpec<'a> {
    pub table: &'a ObjectName,
    pub columns: &'a [Ident],
    /// The file or key prefix; `None` for `FROM STDIN`.
    pub source: Option<&'a str>,
    pub options: &'a [CopyLegacyOption],
    /// PostgreSQL-style `WITH (…)` options (what psql's `\copy` sends).
    pub pg_options: &'a [CopyOption],
}

/// A COPY ready to run: the target, where its fields go and how to read them.
#[derive(Debug, Clone)]
pub struct PreparedCopy {
    pub(super) def: std::sync::Arc<crate::catalog::TableDef>,
    pub(super) fields: Vec<usize>,
    pub(super) format: TextFormat,
    pub(super) max_error: u64,
    pub(super) noload: bool,
    /// Credentials and endpoint for `s3://` sources.
    pub(super) access: ObjectAccess,
    /// The source is a MANIFEST listing the files.
    pub(super) manifest: bool,
    /// `JSON 's3://…/jsonpaths.json'`: read when the COPY runs.
    pub(super) json_paths: Option<String>,
    /// COMPUPDATE and STATUPDATE (None: omitted).
    pub(super) comp_update: Option<CompUpdate>,
    pub(super) stat_update: Option<bool>,
}

impl PreparedCopy {
    /// Columns the client sends (for the CopyInResponse of `FROM STDIN`).
    pub fn field_count(&self) -> usize {
        self.fields.len()
    }
}

impl<'a> CopySpec<'a> {
    /// The COPY … FROM parts of a parsed statement, or an error for the forms Basalt does
    /// not load (COPY TO, COPY FROM a query or STDIN).
    pub fn from_statement(
        source: &'a CopySource,
        to: bool,
        target: &'a CopyTarget,
        options: &'a [CopyLegacyOption],
        pg_options: &'a [CopyOption],
    ) -> Result<Self> {
        let CopySource::Table {
            table_name,
            columns,
        } = source
        else {
            return Err(sql_err!(
                code::FEATURE_NOT_SUPPORTED,
                "COPY from a query is not supported; use UNLOAD"
            ));
        };
        let source = match target {
            CopyTarget::File { filename } => Some(filename.as_str()),
            CopyTarget::Stdin => None,
            _ => {
                return Err(sql_err!(
                    code::FEATURE_NOT_SUPPORTED,
                    "COPY to or from a program or STDOUT is not supported; use UNLOAD"
                ));
            }
        };
        if to {
            return Err(sql_err!(
                code::FEATURE_NOT_SUPPORTED,
                "COPY TO is not supported; use UNLOAD"
            ));
        }
        Ok(Self {
            table: table_name,
            columns,
            source,
            options,
            pg_options,
        })
    }
}

/// COPY's COMPUPDATE: PRESET chooses encodings by type, ON by encoding a sample of the
/// loaded rows; either only when the table was empty. OFF keeps the encodings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum CompUpdate {
    Preset,
    On,
    Off,
}

/// A statement's authorization and REGION options, as given.
#[derive(Default)]
pub(crate) struct Authorization {
    pub iam_role: bool,
    /// `CREDENTIALS 'aws_access_key_id=…;aws_secret_access_key=…[;token=…]'` or
    /// `'aws_iam_role=arn…'`.
    pub credentials: Option<String>,
    pub key_id: Option<String>,
    pub secret: Option<String>,
    pub token: Option<String>,
    pub region: Option<String>,
}

impl Authorization {
    /// The object store access these options give: the statement's own keys, or for an
    /// IAM role the server's configured keys; the endpoint always comes from the server.
    pub fn resolve(mut self, server: &S3Config) -> Result<ObjectAccess> {
        let server = server.with_env();
        let mut role = self.iam_role;
        if let Some(c) = self.credentials.take() {
            if self.key_id.is_some() || role {
                return Err(conflicting());
            }
            for pair in c.split(';').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').ok_or_else(|| {
                    sql_err!(
                        code::INVALID_PARAMETER_VALUE,
                        "Invalid credentials. Must be of the format: credentials 'aws_iam_role=...' or 'aws_access_key_id=...;aws_secret_access_key=...[;token=...]'"
                    )
                })?;
                match k {
                    "aws_access_key_id" => self.key_id = Some(v.to_string()),
                    "aws_secret_access_key" => self.secret = Some(v.to_string()),
                    "token" => self.token = Some(v.to_string()),
                    "aws_iam_role" => role = true,
                    "master_symmetric_key" => {
                        return Err(sql_err!(
                            code::FEATURE_NOT_SUPPORTED,
                            "client-side encryption (master_symmetric_key) is not supported"
                        ));
                    }
                    other => {
                        return Err(sql_err!(
                            code::INVALID_PARAMETER_VALUE,
                            "Invalid credentials: unknown key '{other}'"
                        ));
                    }
                }
            }
        }
        if role && (self.key_id.is_some() || self.secret.is_some()) {
            return Err(conflicting());
        }
        if self.key_id.is_some() != self.secret.is_some() {
            return Err(sql_err!(
                code::INVALID_PARAMETER_VALUE,
                "ACCESS_KEY_ID and SECRET_ACCESS_KEY must be given together"
            ));
        }
        let (access_key_id, secret_access_key) = if self.key_id.is_some() {
            (self.key_id, self.secret)
        } else {
            // IAM_ROLE, or no authorization at all: the server's keys, if it has any.
            (server.access_key_id, server.secret_access_key)
        };
        Ok(ObjectAccess {
            region: self.region.or(server.region),
            endpoint: server.endpoint,
            access_key_id,
            secret_access_key,
            session_token: self.token,
        })
    }
}

pub(super) fn conflicting() -> crate::error::LeaderError {
    sql_err!(
        code::INVALID_PARAMETER_VALUE,
        "conflicting or redundant options: IAM_ROLE, CREDENTIALS and ACCESS_KEY_ID/SECRET_ACCESS_KEY exclude each other"
    )
}

impl StatementContext {
    /// Check the target and options of a COPY and settle how input is read.
    pub(super) fn prepare_copy(
        &self,
        spec: &CopySpec<'_>,
        attrs: &TableAttrs,
    ) -> Result<PreparedCopy> {
        let view = self.view();
        let def = view.named_table(spec.table)?;
        let local = spec.source.is_some_and(|s| !s.starts_with("s3://"));
        if local && !self.is_superuser() {
            return Err(sql_err!(
                code::INSUFFICIENT_PRIVILEGE,
                "must be superuser to COPY from a file on the server"
            ));
        }
        let mut auth = Authorization::default();
        let mut manifest = false;
        let mut json_paths = None;
        let mut comp_update = None;
        let mut stat_update = None;
        let mut fixed_width = None;
        // Input fields → table columns.
        let fields = def.column_indices(spec.columns)?;
        let mut format = TextFormat::default();
        let mut delimiter = None;
        for o in spec.options {
            match o {
                // `CSV [QUOTE [AS] 'q'] [HEADER] [ESCAPE 'e']`, Redshift's and PostgreSQL's
                // older `WITH CSV HEADER` form alike; what the loader cannot honour fails.
                CopyLegacyOption::Csv(csv) => {
                    let mut quote = '"';
                    let mut escape = None;
                    for c in csv {
                        match c {
                            CopyLegacyCsvOption::Quote(q) => quote = *q,
                            CopyLegacyCsvOption::Header => format.ignore_header = 1,
                            CopyLegacyCsvOption::Escape(e) => escape = Some(*e),
                            other => {
                                return Err(sql_err!(
                                    code::FEATURE_NOT_SUPPORTED,
                                    "COPY CSV option {other} is not supported yet"
                                ));
                            }
                        }
                    }
                    if !quote.is_ascii() {
                        return Err(sql_err!(
                            code::INVALID_PARAMETER_VALUE,
                            "COPY quote must be a single ASCII character"
                        ));
                    }
                    // CSV escapes a quote by doubling it; another escape character is not
                    // something the loader reads.
                    if escape.is_some_and(|e| e != quote) {
                        return Err(sql_err!(
                            code::FEATURE_NOT_SUPPORTED,
                            "COPY CSV ESCAPE other than the quote character is not supported yet"
                        ));
                    }
                    format.csv_quote = Some(quote as u8);
                }
                CopyLegacyOption::Delimiter(d) => {
                    if !d.is_ascii() {
                        return Err(sql_err!(
                            code::INVALID_PARAMETER_VALUE,
                            "COPY delimiter must be a single ASCII character"
                        ));
                    }
                    delimiter = Some(*d as u8);
                }
                CopyLegacyOption::IgnoreHeader(n) => format.ignore_header = *n,
                CopyLegacyOption::Null(s) => format.null_as = s.clone(),
                CopyLegacyOption::EmptyAsNull => format.empty_as_null = true,
                CopyLegacyOption::BlankAsNull => format.blanks_as_null = true,
                CopyLegacyOption::TruncateColumns => format.truncate_columns = true,
                CopyLegacyOption::Gzip => format.compression = Compression::Gzip,
                CopyLegacyOption::Bzip2 => format.compression = Compression::Bzip2,
                CopyLegacyOption::Zstd => format.compression = Compression::Zstd,
                CopyLegacyOption::Escape => format.escape = true,
                CopyLegacyOption::RemoveQuotes => format.remove_quotes = true,
                CopyLegacyOption::AcceptAnyDate => format.accept_any_date = true,
                CopyLegacyOption::DateFormat(f) => format.date_format = f.clone(),
                CopyLegacyOption::TimeFormat(f) => format.time_format = f.clone(),
                CopyLegacyOption::IamRole(_) => auth.iam_role = true,
                CopyLegacyOption::Credentials(c) => auth.credentials = Some(c.clone()),
                CopyLegacyOption::Region(r) => auth.region = Some(r.clone()),
                CopyLegacyOption::Manifest { verbose: false } => manifest = true,
                CopyLegacyOption::FixedWidth(spec) => {
                    let widths = formats::parse_fixed_width(spec)
                        .map_err(|e| sql_err!(code::INVALID_PARAMETER_VALUE, "{e}"))?;
                    fixed_width = Some(widths);
                }
                CopyLegacyOption::Json(arg) => {
                    let arg = arg.as_deref().unwrap_or("auto");
                    format.json = Some(match arg.to_ascii_lowercase().as_str() {
                        "auto" => JsonMapping::Auto { ignore_case: false },
                        "auto ignorecase" => JsonMapping::Auto { ignore_case: true },
                        _ => {
                            json_paths = Some(arg.to_string());
                            JsonMapping::Auto { ignore_case: false }
                        }
                    });
                }
                CopyLegacyOption::Parquet => format.parquet = true,
                CopyLegacyOption::AcceptInvChars(c) => {
                    let c = match c.as_deref() {
                        None => '?',
                        Some(s) if s.chars().count() == 1 && s.is_ascii() => {
                            s.chars().next().expect("one char")
                        }
                        Some(s) => {
                            return Err(sql_err!(
                                code::INVALID_PARAMETER_VALUE,
                                "ACCEPTINVCHARS replacement '{s}' must be a single ASCII character"
                            ));
                        }
                    };
                    format.accept_inv_chars = Some(c);
                }
                CopyLegacyOption::CompUpdate { preset, enabled } => {
                    comp_update = Some(match (preset, enabled.unwrap_or(true)) {
                        (true, _) => CompUpdate::Preset,
                        (false, true) => CompUpdate::On,
                        (false, false) => CompUpdate::Off,
                    });
                }
                CopyLegacyOption::StatUpdate(on) => stat_update = Some(on.unwrap_or(true)),
                other => {
                    return Err(sql_err!(
                        code::FEATURE_NOT_SUPPORTED,
                        "COPY parameter {other} is not supported yet"
                    ));
                }
            }
        }
        for o in spec.pg_options {
            match o {
                CopyOption::Format(f) if f.value.eq_ignore_ascii_case("csv") => {
                    format.csv_quote.get_or_insert(b'"');
                }
                CopyOption::Format(f) if f.value.eq_ignore_ascii_case("text") => {}
                CopyOption::Delimiter(d) if d.is_ascii() => delimiter = Some(*d as u8),
                CopyOption::Null(n) => format.null_as = n.clone(),
                CopyOption::Header(h) => format.ignore_header = u64::from(*h),
                CopyOption::Quote(q) if q.is_ascii() => format.csv_quote = Some(*q as u8),
                other => {
                    return Err(sql_err!(
                        code::FEATURE_NOT_SUPPORTED,
                        "COPY option {other} is not supported yet"
                    ));
                }
            }
        }
        // Redshift's default delimiter is '|'; data from STDIN comes from PostgreSQL
        // clients (psql \copy, psycopg), whose text format is tab-delimited.
        let text_delimiter = if spec.source.is_none() { b'\t' } else { b'|' };
        format.delimiter = delimiter.unwrap_or(if format.csv_quote.is_some() {
            b','
        } else {
            text_delimiter
        });
        let mut max_error = 0u64;
        let mut noload = false;
        let mut explicit_ids = false;
        for (param, arg) in &attrs.copy_params {
            match param.as_str() {
                "MAXERROR" => {
                    max_error = arg
                        .as_deref()
                        .and_then(|a| a.parse().ok())
                        .ok_or_else(|| sql_err!(code::SYNTAX_ERROR, "MAXERROR needs a number"))?;
                }
                "IGNOREBLANKLINES" => format.ignore_blank_lines = true,
                "FILLRECORD" => format.fill_record = true,
                "TRIMBLANKS" => format.trim_blanks = true,
                "NOLOAD" => noload = true,
                "EXPLICIT_IDS" => explicit_ids = true,
                "ROUNDEC" => format.round_decimals = true,
                "ACCESS_KEY_ID" => auth.key_id = arg.clone(),
                "SECRET_ACCESS_KEY" => auth.secret = arg.clone(),
                "SESSION_TOKEN" => auth.token = arg.clone(),
                other => {
                    return Err(sql_err!(
                        code::FEATURE_NOT_SUPPORTED,
                        "COPY parameter {other} is not supported yet"
                    ));
                }
            }
        }

        for (i, c) in def.columns.iter().enumerate() {
            if c.identity.is_none() {
                continue;
            }
            if !fields.contains(&i) {
                // Generated by the COPY.
                continue;
            }
            if !explicit_ids {
                return Err(sql_err!(
                    code::INVALID_PARAMETER_VALUE,
                    "cannot COPY into IDENTITY column \"{}\" without EXPLICIT_IDS",
                    c.name
                ));
            }
        }
        if format.csv_quote.is_some() && (format.escape || format.remove_quotes) {
            return Err(sql_err!(
                code::SYNTAX_ERROR,
                "CSV cannot be used with ESCAPE or REMOVEQUOTES"
            ));
        }
        if fixed_width.is_some() && (format.csv_quote.is_some() || delimiter.is_some()) {
            return Err(sql_err!(
                code::SYNTAX_ERROR,
                "FIXEDWIDTH cannot be used with CSV or DELIMITER"
            ));
        }
        format.fixed_widths = fixed_width;
        let text_only = format.csv_quote.is_some()
            || delimiter.is_some()
            || format.fixed_widths.is_some()
            || format.escape
            || format.remove_quotes
            || format.fill_record
            || format.ignore_blank_lines;
        if format.json.is_some() && (text_only || format.null_as != "\\N") {
            return Err(sql_err!(
                code::SYNTAX_ERROR,
                "JSON cannot be used with CSV, DELIMITER, ESCAPE, FILLRECORD, FIXEDWIDTH, IGNOREBLANKLINES, NULL AS or REMOVEQUOTES"
            ));
        }
        if format.parquet
            && (text_only
                || format.json.is_some()
                || format.compression != Compression::None
                || format.ignore_header > 0
                || format.date_format.is_some()
                || format.time_format.is_some())
        {
            return Err(sql_err!(
                code::SYNTAX_ERROR,
                "PARQUET cannot be used with text format parameters (CSV, DELIMITER, FIXEDWIDTH, JSON, IGNOREHEADER, DATEFORMAT, TIMEFORMAT, GZIP, BZIP2, ZSTD, …)"
            ));
        }
        let access = auth.resolve(&self.engine.config.s3)?;
        Ok(PreparedCopy {
            def,
            fields,
            format,
            max_error,
            noload,
            access,
            manifest,
            json_paths,
            comp_update,
            stat_update,
        })
    }
}
