/* The expected contents of the container tests, built in ordinary memory:
 * what the persistent containers must hold after stage 1 (built by the
 * first process) and after stage 2 (mutated by the second). */
#ifndef PM_CONTAINER_MODEL_HPP
#define PM_CONTAINER_MODEL_HPP

#include <deque>
#include <map>
#include <string>
#include <vector>

namespace model {

/* Short keys and words fit libstdc++'s in-object buffer, long ones do not:
 * both representations must survive. */
inline std::string key(int i)
{
    if (i % 3 == 0)
        return "a-rather-long-key-number-" + std::to_string(i) + "-with-padding-past-sso";
    return "k" + std::to_string(i);
}

inline std::vector<int> values(int i)
{
    std::vector<int> v;
    for (int j = 1; j <= i % 17 + 1; j++)
        v.push_back(i * j);
    return v;
}

inline std::string word(int j)
{
    if (j % 4 == 0)
        return "word-" + std::to_string(j) + "-long-enough-to-live-on-the-heap";
    return "w" + std::to_string(j);
}

inline std::vector<int> row(int r, int len)
{
    std::vector<int> v;
    for (int c = 0; c < len; c++)
        v.push_back(r * 1000 + c);
    return v;
}

struct Model {
    std::map<std::string, std::vector<int>> table;
    std::deque<std::string> words;
    std::vector<std::vector<int>> matrix;
    std::string title;
    std::deque<long> numbers;
};

constexpr int n_keys = 200, n_new_keys = 60, n_words = 500, n_rows = 50;

inline Model stage1()
{
    Model m;
    for (int i = 0; i < n_keys; i++)
        m.table[key(i)] = values(i);
    for (int j = 0; j < n_words; j++)
        m.words.push_back(word(j));
    for (int r = 0; r < n_rows; r++)
        m.matrix.push_back(row(r, r * 3));
    m.title = "persistent containers built by the first process";
    for (long i = 0; i < 5000; i++)
        m.numbers.push_back(i * i);
    return m;
}

/* The mutations of stage 2, applied to the model; the tests apply the same
 * steps to the persistent containers. */
inline Model stage2()
{
    Model m = stage1();
    for (int i = 0; i < n_keys; i++) {
        if (i % 5 == 0) {
            m.table.erase(key(i));
        } else {
            m.table[key(i)].push_back(-i);
            m.table[key(i)].push_back(-2 * i);
        }
    }
    for (int i = n_keys; i < n_keys + n_new_keys; i++)
        m.table[key(i)] = {7 * i};
    for (int j = 0; j < 100; j++)
        m.words.pop_front();
    for (int j = n_words; j < n_words + 100; j++)
        m.words.push_back(word(j));
    for (std::size_t j = 0; j < m.words.size(); j += 10)
        m.words[j] += "+extended-to-a-long-string";
    m.matrix.resize(70);
    for (int r = 0; r < 70; r++)
        m.matrix[static_cast<std::size_t>(r)] = row(r, r % 2 == 0 ? r : r * 3);
    m.title += " / mutated by the second";
    for (int k = 0; k < 500; k++)
        m.numbers.pop_back();
    for (long k = 0; k < 500; k++)
        m.numbers.push_front(-k);
    return m;
}

} // namespace model

#endif
