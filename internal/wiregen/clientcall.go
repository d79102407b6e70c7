package wiregen

import (
	"context"
	"errors"
	"io"

	goopenai "github.com/sashabaranov/go-openai"
)

// ByteReader returns a function that yields data's bytes in order, then
// zeros once they run out: the way a fuzz target feeds NextBilledAnswer
// and its kin from its input.
func ByteReader(data []byte) func() byte {
	return func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
}

// GoOpenAIChat makes req with the go-openai client, as a stream read to
// its end (usage included) when stream is set; the stream's io.EOF is no
// error.
func GoOpenAIChat(ctx context.Context, client *goopenai.Client, req goopenai.ChatCompletionRequest, stream bool) error {
	if !stream {
		_, err := client.CreateChatCompletion(ctx, req)
		return err
	}
	req.StreamOptions = &goopenai.StreamOptions{IncludeUsage: true}
	s, err := client.CreateChatCompletionStream(ctx, req)
	if err != nil {
		return err
	}
	for err == nil {
		_, err = s.Recv()
	}
	s.Close()
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}
