package localstore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// Files are sequences of frames: a little-endian uint32 body length, a
// uint32 CRC-32C of the body, then the body. The write-ahead log and
// snapshots share the format.
const frameHeader = 8

// maxFrame bounds a frame body, so a corrupt length cannot make a reader
// allocate gigabytes.
const maxFrame = 1 << 30

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errTorn reports a frame cut short or failing its checksum: the tail of a
// log whose last write a crash interrupted.
var errTorn = errors.New("localstore: torn or corrupt frame")

// Write-ahead log record kinds (the first body byte).
const (
	opUpsert byte = 1
	opDelete byte = 2
)

func appendFrame(dst, body []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(body)))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(body, castagnoli))
	return append(dst, body...)
}

// readFrame reads one frame into buf (grown as needed). It returns io.EOF at
// a clean end and errTorn for a partial or corrupt frame.
func readFrame(r *bufio.Reader, buf []byte) ([]byte, error) {
	var h [frameHeader]byte
	n, err := io.ReadFull(r, h[:])
	if err == io.EOF {
		return buf, io.EOF
	}
	if err != nil || n < frameHeader {
		return buf, errTorn
	}
	size := binary.LittleEndian.Uint32(h[:4])
	if size > maxFrame {
		return buf, errTorn
	}
	if cap(buf) < int(size) {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	if _, err := io.ReadFull(r, buf); err != nil {
		return buf, errTorn
	}
	if crc32.Checksum(buf, castagnoli) != binary.LittleEndian.Uint32(h[4:]) {
		return buf, errTorn
	}
	return buf, nil
}

// wal is one collection's append-only log. Its owner serialises calls.
type wal struct {
	f    *os.File
	size int64
	buf  []byte
}

// openWAL opens (creating) the log at path and passes each complete record
// to replay in order. A torn tail is cut off, so later appends follow the
// last good record; torn reports whether that happened.
func openWAL(path string, replay func(body []byte) error) (w *wal, torn bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, false, err
	}
	r := bufio.NewReaderSize(f, 1<<20)
	var good int64
	var buf []byte
	for {
		buf, err = readFrame(r, buf)
		if err == io.EOF {
			break
		}
		if err == errTorn {
			torn = true
			break
		}
		if err := replay(buf); err != nil {
			f.Close()
			return nil, false, fmt.Errorf("replay %s at offset %d: %w", path, good, err)
		}
		good += frameHeader + int64(len(buf))
	}
	if torn {
		if err := f.Truncate(good); err != nil {
			f.Close()
			return nil, false, err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, false, err
		}
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, false, err
	}
	return &wal{f: f, size: good}, torn, nil
}

// append writes body as one frame and fsyncs. On failure it cuts the file
// back, so a failed record is never replayed.
func (w *wal) append(body []byte) error {
	w.buf = appendFrame(w.buf[:0], body)
	if _, err := w.f.Write(w.buf); err != nil {
		w.rollback()
		return err
	}
	if err := w.f.Sync(); err != nil {
		w.rollback()
		return err
	}
	w.size += int64(len(w.buf))
	if cap(w.buf) > 4<<20 {
		w.buf = nil // do not pin one large batch's buffer
	}
	return nil
}

func (w *wal) rollback() {
	_ = w.f.Truncate(w.size)
	_, _ = w.f.Seek(w.size, io.SeekStart)
}

// reset empties the log, after a snapshot holds everything it had.
func (w *wal) reset() error {
	if err := w.f.Truncate(0); err != nil {
		return err
	}
	if _, err := w.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	w.size = 0
	return w.f.Sync()
}

func (w *wal) close() error { return w.f.Close() }

// writeFileAtomic writes data to path through a synced temporary file and a
// rename, then syncs the directory.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
