"""Media pipeline: the code shared by every Lambda function of the image pipeline."""
