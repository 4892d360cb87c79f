// Command thumbnail is an AWS Lambda function, written for S3 and unchanged
// for Hostless: when an image lands in the uploads bucket, it writes a
// thumbnail of at most 128x128 pixels, as PNG, under the same key in the
// thumbnails bucket.
//
// On AWS it would be wired to the bucket's notifications; on Hostless an
// events trigger (storage.object.created) delivers the same S3 event, and
// the manifest's buckets: grant gives it temporary credentials and
// AWS_ENDPOINT_URL_S3, which config.LoadDefaultConfig reads like any
// other AWS setting.
package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	_ "image/gif" // decoders for image.Decode
	_ "image/jpeg"
	"image/png"
	"log"
	"net/url"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/image/draw"
)

const (
	maxSide    = 128
	maxInBytes = 32 << 20 // images larger than this are skipped
)

var (
	client     *s3.Client
	source     = env("UPLOADS_BUCKET", "uploads")
	thumbnails = env("THUMBNAILS_BUCKET", "thumbnails")
)

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func handler(ctx context.Context, ev events.S3Event) error {
	for _, r := range ev.Records {
		if r.S3.Bucket.Name != source {
			continue // our own thumbnails, or another bucket's objects
		}
		// S3 events carry keys URL-encoded, a space as '+'.
		key, err := url.QueryUnescape(r.S3.Object.Key)
		if err != nil {
			return fmt.Errorf("key %q: %w", r.S3.Object.Key, err)
		}
		if r.S3.Object.Size > maxInBytes {
			log.Printf("skip %s: %d bytes", key, r.S3.Object.Size)
			continue
		}
		if err := thumbnail(ctx, key); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	return nil
}

func thumbnail(ctx context.Context, key string) error {
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(source), Key: aws.String(key)})
	if err != nil {
		return err
	}
	defer out.Body.Close()
	src, format, err := image.Decode(out.Body)
	if err != nil {
		log.Printf("skip %s: not an image (%v)", key, err)
		return nil
	}
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	if w > maxSide || h > maxSide {
		if w >= h {
			w, h = maxSide, max(1, h*maxSide/w)
		} else {
			w, h = max(1, w*maxSide/h), maxSide
		}
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(dst, dst.Bounds(), src, b, draw.Src, nil)
	var buf bytes.Buffer
	if err := png.Encode(&buf, dst); err != nil {
		return err
	}
	_, err = client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(thumbnails), Key: aws.String(key), Body: bytes.NewReader(buf.Bytes()),
		ContentType: aws.String("image/png"),
	})
	if err == nil {
		log.Printf("thumbnail of %s (%s %dx%d): %dx%d, %d bytes", key, format, b.Dx(), b.Dy(), w, h, buf.Len())
	}
	return err
}

func main() {
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	client = s3.NewFromConfig(cfg)
	lambda.Start(handler)
}
