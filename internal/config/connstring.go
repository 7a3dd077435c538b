package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ServingURL returns connString, a postgres:// URL or a libpq keyword/value
// string, changed to log in as role without a password. The result reaches
// the same server and database; it works where the server lets role in
// without a password (trust, peer or certificate authentication), as the
// local cluster does. Deployments that use passwords set the serving
// connection explicitly.
func ServingURL(connString, role string) (string, error) {
	cs, err := parseConnString(connString)
	if err != nil {
		return "", err
	}
	cs.set("user", role)
	cs.del("password")
	return cs.String(), nil
}

// SplitPassword returns connString without its password, and the password,
// so that a program can be handed the password through its environment
// rather than on a command line that other users can list.
func SplitPassword(connString string) (rest, password string, err error) {
	cs, err := parseConnString(connString)
	if err != nil {
		return "", "", err
	}
	password = cs.get("password")
	cs.del("password")
	return cs.String(), password, nil
}

// connString is a connection string taken apart, in either of libpq's two
// forms. A URL keeps user and password in its user info and any other
// parameter in its query.
type connString struct {
	url   *url.URL // set for the URL form
	pairs []pair   // the keyword/value form, in order
}

type pair struct{ key, value string }

func parseConnString(s string) (*connString, error) {
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		u, err := url.Parse(s)
		if err != nil {
			// url.Error quotes the whole URL, password included.
			return nil, errors.New("malformed connection URL")
		}
		return &connString{url: u}, nil
	}
	pairs, err := parseKeywordValue(s)
	if err != nil {
		return nil, err
	}
	return &connString{pairs: pairs}, nil
}

func (cs *connString) get(key string) string {
	if cs.url != nil {
		switch {
		case key == "user" && cs.url.User != nil:
			return cs.url.User.Username()
		case key == "password" && cs.url.User != nil:
			if p, ok := cs.url.User.Password(); ok {
				return p
			}
		}
		return cs.url.Query().Get(key)
	}
	v := ""
	for _, p := range cs.pairs {
		if p.key == key {
			v = p.value // a later keyword wins, as in libpq
		}
	}
	return v
}

// set gives key the value, replacing every earlier occurrence.
func (cs *connString) set(key, value string) {
	if cs.url != nil {
		cs.delQuery(key)
		switch key {
		case "user":
			cs.url.User = url.User(value)
		default:
			q := cs.url.Query()
			q.Set(key, value)
			cs.url.RawQuery = q.Encode()
		}
		return
	}
	cs.del(key)
	cs.pairs = append(cs.pairs, pair{key, value})
}

func (cs *connString) del(key string) {
	if cs.url != nil {
		cs.delQuery(key)
		if key == "password" && cs.url.User != nil {
			cs.url.User = url.User(cs.url.User.Username())
		}
		return
	}
	cs.pairs = deleteKey(cs.pairs, key)
}

func (cs *connString) delQuery(key string) {
	q := cs.url.Query()
	if q.Has(key) {
		q.Del(key)
		cs.url.RawQuery = q.Encode()
	}
}

func deleteKey(pairs []pair, key string) []pair {
	out := pairs[:0]
	for _, p := range pairs {
		if p.key != key {
			out = append(out, p)
		}
	}
	return out
}

func (cs *connString) String() string {
	if cs.url != nil {
		return cs.url.String()
	}
	parts := make([]string, len(cs.pairs))
	for i, p := range cs.pairs {
		parts[i] = p.key + "=" + quoteValue(p.value)
	}
	return strings.Join(parts, " ")
}

// parseKeywordValue splits a libpq keyword/value string: keyword = value
// pairs separated by spaces, where a value is either single-quoted, with \'
// and \\ as escapes, or runs to the next space, with \ escaping the next
// character.
func parseKeywordValue(s string) ([]pair, error) {
	var out []pair
	for {
		s = strings.TrimLeft(s, " \t\n\r\f\v")
		if s == "" {
			return out, nil
		}

		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, errors.New("malformed connection string: want keyword=value pairs")
		}
		key := strings.TrimSpace(s[:eq])
		if key == "" || strings.ContainsAny(key, " \t\n\r\f\v") {
			return nil, fmt.Errorf("malformed connection string near %q", key)
		}
		s = strings.TrimLeft(s[eq+1:], " \t\n\r\f\v")

		value, rest, err := cutValue(s)
		if err != nil {
			return nil, fmt.Errorf("malformed connection string: value of %s: %w", key, err)
		}
		out = append(out, pair{key, value})
		s = rest
	}
}

// cutValue reads one value from the start of s and returns it with the rest.
func cutValue(s string) (value, rest string, err error) {
	var b strings.Builder
	if strings.HasPrefix(s, "'") {
		for i := 1; i < len(s); i++ {
			switch c := s[i]; {
			case c == '\\' && i+1 < len(s):
				i++
				b.WriteByte(s[i])
			case c == '\'':
				return b.String(), s[i+1:], nil
			default:
				b.WriteByte(c)
			}
		}
		return "", "", errors.New("unterminated quoted value")
	}

	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case strings.IndexByte(" \t\n\r\f\v", c) >= 0:
			return b.String(), s[i:], nil
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), "", nil
}

// quoteValue quotes a keyword/value string value when it needs it.
func quoteValue(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\n\r\f\v'\\") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}
