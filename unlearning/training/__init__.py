"""Models and their training: the dataset's model (`models`), one training run (`train`: `fit`, `Trained`,
`TrainRecord`), K runs as one batched model (`ensemble`), progress bars (`progress`), the torch thread policy
(`threads`) and the FLOP counts it reads (`throughput`)."""
