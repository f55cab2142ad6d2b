package duckdb

import "strings"

// SplitStatements cuts SQL text into statements at the semicolons outside
// quotes and comments. Statements that are empty or only comments are
// dropped.
func SplitStatements(text string) []string {
	var (
		out   []string
		start int
		code  bool // the current statement has more than blanks and comments
	)
	emit := func(end int) {
		if code {
			out = append(out, strings.TrimSpace(text[start:end]))
		}
		start, code = end+1, false
	}
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case c == '\'' || c == '"':
			code = true
			for i++; i < len(text); i++ {
				if text[i] == c {
					if i+1 < len(text) && text[i+1] == c { // doubled: an escaped quote
						i++
						continue
					}
					break
				}
			}
		case c == '-' && strings.HasPrefix(text[i:], "--"):
			if j := strings.IndexByte(text[i:], '\n'); j >= 0 {
				i += j
			} else {
				i = len(text)
			}
		case c == '/' && strings.HasPrefix(text[i:], "/*"):
			if j := strings.Index(text[i+2:], "*/"); j >= 0 {
				i += j + 3
			} else {
				i = len(text)
			}
		case c == ';':
			emit(i)
		case c != ' ' && c != '\t' && c != '\n' && c != '\r':
			code = true
		}
	}
	emit(len(text))
	return out
}
