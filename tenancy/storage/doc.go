// Package storage keeps tenant files, each tenant under its own prefix, on
// local disk or in an S3-compatible bucket.
//
// A key is <schema>/<subdir>/<name>: the tenant's schema, a subdir the
// caller chooses (a collector id, say) and a random name that Put
// generates; callers never name objects themselves. Every call takes the
// tenant from its context, and Get, Stat and Delete check the key on each
// call: it must be made of plain segments (letters, digits, dots, hyphens,
// underscores, none starting with a dot), so that "..", absolute paths,
// backslashes and encoded tricks are impossible, and its first segment
// must be the tenant's schema. A key of another tenant fails with
// ErrForeignKey even when it exists, and a context without a tenant fails
// with tenancy.ErrNoTenant.
//
//	store, err := storage.Open(ctx, "file:///var/lib/xat/files")
//	...
//	ctx = tenancy.WithTenant(ctx, acme)
//	obj, err := store.Put(ctx, "42", req.Body, 512<<20)
//	// keep obj.Key, obj.Size and obj.SHA256 with the upload's row
//	rc, attrs, err := store.Get(ctx, obj.Key)
//
// Put streams through a fixed buffer whatever the size, hashes with SHA-256
// as it writes, and stops with ErrTooLarge past its limit. An object
// becomes visible only once complete; a failed, cancelled or oversized
// upload leaves nothing behind.
//
// # Backends
//
// The local-disk backend is written directly on the os package rather than
// on gocloud.dev's fileblob. fileblob does publish atomically (a temp file
// renamed on Close), but by default it puts the temp file in the system
// temp directory, so the rename fails when that is another file system;
// it creates files 0666 and, by default, directories 0777 (less the
// umask); it writes an .attrs file beside each object, does not sync to
// disk before the rename, and follows any symbolic link in the tree. Ours writes a temp file in
// the object's own directory, syncs it, then renames it and syncs the
// directory; files are 0600 and directories 0700; and every access goes
// through an os.Root, so even a symbolic link planted in the tree cannot
// lead outside the storage directory.
//
// The S3 backend goes through gocloud.dev/blob/s3blob, whose writers
// publish on Close and abort when their context is cancelled first.
// Interrupted multipart uploads can leave parts behind on the server; give
// the bucket a lifecycle rule that aborts incomplete multipart uploads.
// NewBlobBucket wraps any other gocloud.dev bucket.
//
// A process that dies during an upload to local disk leaves a hidden temp
// file (".upload-*") in the object's directory. Nothing lists or serves
// it, Usage does not count it, and DeletePrefix removes it with the rest of
// the tenant.
package storage
