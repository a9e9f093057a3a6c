//! Located errors in the user's `.proto` files, rendered by miette with the offending line and
//! a `help:` that says how to fix it.

use std::sync::Arc;

use miette::{NamedSource, SourceSpan};
use prost_reflect::FileDescriptor;

/// One problem in a proto file.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
pub struct ProtoDiagnostic {
    message: String,
    #[source_code]
    source_code: NamedSource<Arc<String>>,
    #[label("{label}")]
    span: SourceSpan,
    label: String,
    #[help]
    help: Option<String>,
}

/// All problems found, reported together.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{} problem(s) in the proto annotations", problems.len())]
pub struct Diagnostics {
    /// The problems, in source order.
    #[related]
    pub problems: Vec<ProtoDiagnostic>,
}

/// Proto sources by import name, to locate descriptor paths in.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// (import name, path shown to the user, text)
    files: Vec<(String, String, Arc<String>)>,
}

impl Sources {
    /// Records the text of file `name`, shown to users as `shown` (its path from the project).
    pub fn add(&mut self, name: &str, shown: String, text: String) {
        self.files.push((name.to_owned(), shown, Arc::new(text)));
    }

    fn get(&self, name: &str) -> (String, Arc<String>) {
        self.files.iter().find(|(n, _, _)| n == name).map_or_else(
            || (name.to_owned(), Arc::default()),
            |(_, shown, text)| (shown.clone(), text.clone()),
        )
    }
}

/// Where a problem is: a descriptor path in a file, optionally narrowed to a substring of the
/// located text (e.g. one `{placeholder}` of a key template).
#[derive(Clone, Debug)]
pub struct Location {
    file: FileDescriptor,
    path: Vec<i32>,
    needle: Option<String>,
}

impl Location {
    /// The element at `path` of `file` (a `SourceCodeInfo` path).
    pub fn new(file: &FileDescriptor, path: &[i32]) -> Self {
        Self {
            file: file.clone(),
            path: path.to_vec(),
            needle: None,
        }
    }

    /// Narrows the label to the first occurrence of `needle` inside the element.
    pub fn narrowed(mut self, needle: impl Into<String>) -> Self {
        self.needle = Some(needle.into());
        self
    }

    /// The same location extended by `suffix` path segments.
    pub fn child(&self, suffix: &[i32]) -> Self {
        let mut path = self.path.clone();
        path.extend_from_slice(suffix);
        Self {
            file: self.file.clone(),
            path,
            needle: None,
        }
    }

    /// Builds the diagnostic.
    pub fn error(
        &self,
        sources: &Sources,
        message: impl Into<String>,
        label: impl Into<String>,
        help: Option<String>,
    ) -> ProtoDiagnostic {
        let (name, text) = sources.get(self.file.name());
        let span = self.span(&text);
        ProtoDiagnostic {
            message: message.into(),
            source_code: NamedSource::new(name, text),
            span,
            label: label.into(),
            help,
        }
    }

    /// `file:line:column` of the element (1-based), the file as shown to the user.
    pub fn position(&self, sources: &Sources) -> String {
        let (name, _) = sources.get(self.file.name());
        match self.line_columns() {
            Some((line, column, _, _)) => format!("{name}:{}:{}", line + 1, column + 1),
            None => name,
        }
    }

    /// The 0-based (start line, start column, end line, end column) of the element or of its
    /// nearest located ancestor.
    fn line_columns(&self) -> Option<(i32, i32, i32, i32)> {
        let info = self
            .file
            .file_descriptor_proto()
            .source_code_info
            .as_ref()?;
        let mut path = self.path.as_slice();
        let location = loop {
            let found = info.location.iter().find(|l| l.path == path);
            match (found, path.split_last()) {
                (Some(l), _) => break l,
                (None, Some((_, parent))) => path = parent,
                (None, None) => return None,
            }
        };
        match location.span[..] {
            [l, c, ec] => Some((l, c, l, ec)),
            [l, c, el, ec] => Some((l, c, el, ec)),
            _ => None,
        }
    }

    fn span(&self, text: &str) -> SourceSpan {
        let Some((start_line, start_col, end_line, end_col)) = self.line_columns() else {
            return SourceSpan::from((0, 0));
        };
        let start = offset_of(text, start_line, start_col);
        let end = offset_of(text, end_line, end_col).max(start);
        if let Some(needle) = &self.needle
            && let Some(at) = text[start..end].find(needle.as_str())
        {
            return SourceSpan::from((start + at, needle.len()));
        }
        SourceSpan::from((start, end - start))
    }
}

/// Byte offset of a 0-based (line, column) where columns count characters.
fn offset_of(text: &str, line: i32, column: i32) -> usize {
    let line = usize::try_from(line).unwrap_or(0);
    let column = usize::try_from(column).unwrap_or(0);
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i == line {
            return offset + l.char_indices().nth(column).map_or(l.len(), |(b, _)| b);
        }
        offset += l.len();
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::offset_of;

    #[test]
    fn offsets_count_characters() {
        let text = "ab\nçd\n";
        assert_eq!(offset_of(text, 1, 1), 5);
        assert_eq!(offset_of(text, 9, 0), text.len());
    }
}
