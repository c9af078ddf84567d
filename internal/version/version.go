// Package version holds ukdump's version, recorded in every manifest.
package version

// Version is ukdump's release.
const Version = "0.1.0"
