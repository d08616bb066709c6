package s3stash_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/s3stash"
)

// lifecycleBucket has lifecycle rules of its own, so they touch no other
// test's objects: everything under past/ expires on a date long gone,
// everything under days/ a day after it is written.
const lifecycleBucket = "claimstash-lifecycle"

func lifecycleStore(t *testing.T, prefix string) (*s3stash.Store, *s3.Client) {
	t.Helper()
	srv := server(t)
	c := srv.Client()
	ctx := context.Background()
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(lifecycleBucket)})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		t.Fatal(err)
	}
	if _, err := c.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{
		Bucket: aws.String(lifecycleBucket),
		LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: []types.LifecycleRule{{
			ID: aws.String("long-gone"), Status: types.ExpirationStatusEnabled,
			Filter:     &types.LifecycleRuleFilter{Prefix: aws.String("past/")},
			Expiration: &types.LifecycleExpiration{Date: aws.Time(time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC))},
		}, {
			ID: aws.String("one-day"), Status: types.ExpirationStatusEnabled,
			Filter:     &types.LifecycleRuleFilter{Prefix: aws.String("days/")},
			Expiration: &types.LifecycleExpiration{Days: aws.Int32(1)},
		}}},
	}); err != nil {
		t.Fatal(err)
	}
	s, err := s3stash.NewConfig(c, s3stash.Config{Bucket: lifecycleBucket, Prefix: prefix + freshPrefix(), PartSize: partSize})
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

// TestLifecycleRemovingStashRefused: a Put whose object a bucket lifecycle
// rule removes at once (S3 and MinIO then serve it to no one: MinIO answers
// 404 right after the write succeeded) or before the stash's own expiry
// fails, and leaves nothing, instead of reporting a stash written that is
// lost before its time.
func TestLifecycleRemovingStashRefused(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		prefix  string
		ttl     time.Duration
		size    int
		refused bool
	}{
		{"expired-at-once", "past/", 0, 100, true},
		{"expired-at-once/multipart", "past/", 0, 2*partSize + 1, true},
		{"before-its-ttl", "days/", 30 * 24 * time.Hour, 100, true},
		{"before-its-ttl/multipart", "days/", 30 * 24 * time.Hour, partSize + 1, true},
		{"after-its-ttl", "days/", time.Hour, 100, false},
		{"no-ttl", "days/", 0, 100, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := lifecycleStore(t, tc.prefix)
			p := payload(tc.size, 7)
			key := fmt.Sprintf("lc.%s", hexSHA(p))
			a := attrsFor(p)
			if tc.ttl > 0 {
				a.ExpiresAt = time.Now().Add(tc.ttl).UTC()
			}
			err := s.Put(ctx, "ns", key, bytes.NewReader(p), int64(len(p)), a)
			if !tc.refused {
				if err != nil {
					t.Fatalf("Put: %v", err)
				}
				if got, _ := get(t, s, "ns", key); !bytes.Equal(got, p) {
					t.Fatal("Get returned other bytes")
				}
				return
			}
			if err == nil {
				_, serr := s.Stat(ctx, "ns", key)
				t.Fatalf("Put under a lifecycle rule that removes the object before its time succeeded (Stat then: %v)", serr)
			}
			if !strings.HasPrefix(err.Error(), "s3stash: ") || !strings.Contains(err.Error(), "lifecycle rule") || errors.Is(err, driver.ErrExists) {
				t.Fatalf("Put: %v, want an error naming the lifecycle rule", err)
			}
			if _, err := s.Stat(ctx, "ns", key); !errors.Is(err, driver.ErrNotFound) {
				t.Fatalf("Stat after the refused Put: %v, want ErrNotFound", err)
			}
		})
	}
	// Through the engine: every Create fails, none reports a stash.
	s, _ := lifecycleStore(t, "past/")
	e, err := stash.New(stash.WithBackend(s), stash.WithInlineMax(-1))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if st, err := e.Create(ctx, "gone", []byte("lost at once"), stash.InNamespace("ns")); err == nil {
			t.Fatalf("Create %d under an expired lifecycle rule reported %s written", i+1, st.Address)
		}
	}
}
