// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package targetspec is the grammar of a dump target in the config: the
// device spec (UUID=…, LABEL=…, PARTUUID=… or /dev/…) and the network url
// (sftp://user@host[:port]/path, scp://…). The config checks them with it,
// and the packages that find the disk or reach the host parse them with it,
// so all agree on one grammar. It imports nothing of ours.
//
// Errors describe the value only; callers say which field held it.
package targetspec
