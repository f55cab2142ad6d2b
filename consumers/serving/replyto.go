package serving

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/streamrec/streamrec/schemas"
)

// ErrReplyTopicRefused rejects (dead-letters) a request whose reply-to names
// a topic the server may not write to: one of the pipeline's own topics, a
// dead-letter topic, a Kafka-internal topic, or a topic outside
// Config.ReplyTopics. Without the check a request could make the server
// write into the catalog under an item's key (compaction would then drop
// the real item), forge dead letters, or create topics.
var ErrReplyTopicRefused = errors.New("serving: reply-to topic refused")

// DefaultReplyTopics allows the topics reco clients create
// (producers/reco: reco.replies.<host>.<random>).
func DefaultReplyTopics() []string { return []string{schemas.ReplyTopicPrefix + "*"} }

// replyPolicy decides which reply-to topics the server writes to. The
// reserved topics are refused whatever the patterns say.
type replyPolicy struct {
	patterns []string
	reserved map[string]bool
}

func newReplyPolicy(patterns, reserved []string) replyPolicy {
	p := replyPolicy{patterns: patterns, reserved: make(map[string]bool, len(reserved))}
	for _, t := range reserved {
		p.reserved[t] = true
	}
	return p
}

// check returns nil if topic may receive replies, else the reason.
func (p replyPolicy) check(topic string) error {
	switch {
	case p.reserved[topic]:
		return fmt.Errorf("%w: %q is one of the pipeline's own topics", ErrReplyTopicRefused, topic)
	case strings.HasSuffix(topic, schemas.DLQSuffix):
		return fmt.Errorf("%w: %q is a dead-letter topic", ErrReplyTopicRefused, topic)
	case strings.HasPrefix(topic, "__"):
		return fmt.Errorf("%w: %q is a Kafka-internal topic", ErrReplyTopicRefused, topic)
	case !validTopicName(topic):
		return fmt.Errorf("%w: %q is not a valid topic name (1-249 of a-z A-Z 0-9 . _ -)", ErrReplyTopicRefused, clip(topic, 64))
	}
	for _, pat := range p.patterns {
		if ok, _ := path.Match(pat, topic); ok {
			return nil
		}
	}
	return fmt.Errorf("%w: %q matches none of serving.reply_topics %q", ErrReplyTopicRefused, topic, p.patterns)
}

// validTopicName is Kafka's rule for topic names.
func validTopicName(t string) bool {
	if t == "" || len(t) > 249 || t == "." || t == ".." {
		return false
	}
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// validateReplyTopics checks the serving.reply_topics patterns.
func validateReplyTopics(prefix string, patterns []string) error {
	if len(patterns) == 0 {
		return fmt.Errorf("%s.reply_topics must not be empty (the default is %q)", prefix, DefaultReplyTopics())
	}
	for i, pat := range patterns {
		if pat == "" {
			return fmt.Errorf("%s.reply_topics[%d] must not be empty", prefix, i)
		}
		if _, err := path.Match(pat, ""); err != nil {
			return fmt.Errorf("%s.reply_topics[%d]: %q is not a valid pattern: %w", prefix, i, pat, err)
		}
	}
	return nil
}
