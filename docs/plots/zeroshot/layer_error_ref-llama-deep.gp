set terminal pngcairo size 1000,500 font 'Sans,10'
set output 'docs/plots/zeroshot/layer_error_ref-llama-deep.png'
set title 'Relative output error per layer, ||(W-Wq)X||^2 / ||WX||^2 (ref-llama-deep)'
set xlabel 'layer (blocks in order; q k v o gate up down / q k v out fc1 fc2)'
set ylabel 'relative output error (log scale)'
set logscale y
set grid
set key outside right
plot 'docs/plots/zeroshot/layer_error_ref-llama-deep.dat' index 0 using 1:2 with linespoints pt 7 ps 0.6 title 'PBS2P 4:8', 'docs/plots/zeroshot/layer_error_ref-llama-deep.dat' index 1 using 1:2 with linespoints pt 7 ps 0.6 title 'STBLLM 4:8', 'docs/plots/zeroshot/layer_error_ref-llama-deep.dat' index 2 using 1:2 with linespoints pt 7 ps 0.6 title 'BiLLM', 'docs/plots/zeroshot/layer_error_ref-llama-deep.dat' index 3 using 1:2 with linespoints pt 7 ps 0.6 title 'ARB-LLM (RC)', 'docs/plots/zeroshot/layer_error_ref-llama-deep.dat' index 4 using 1:2 with linespoints pt 7 ps 0.6 title 'GPTQ 2-bit'
